import Foundation
import Metrics
import Prometheus

/// The server's metrics, through swift-metrics into a Prometheus registry, rendered at /metrics.
/// Hummingbird's metrics middleware adds request counts and latencies per route; the engine
/// records `lookalike_model_inference_seconds{model}` around every model run.
enum ServerMetrics {
    static let registry = PrometheusCollectorRegistry()

    /// Installs the Prometheus backend once per process (a second server in the same process,
    /// as in tests, shares it).
    static let bootstrap: Void = {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }()

    static func imagesIndexed(_ collection: String) -> Metrics.Counter {
        Metrics.Counter(label: "lookalike_images_indexed_total", dimensions: [("collection", collection)])
    }

    /// A whole search or upload on the server's side: decode, embed, then rank or store.
    static func requestTimer(_ kind: String) -> Metrics.Timer {
        Metrics.Timer(label: "lookalike_image_request_seconds", dimensions: [("kind", kind)], preferredDisplayUnit: .seconds)
    }

    /// Items per collection, read when /metrics is asked for.
    static func collectionItems(_ collection: String) -> Metrics.Gauge {
        Metrics.Gauge(label: "lookalike_collection_items", dimensions: [("collection", collection)])
    }

    /// Vectors (the index size) per collection and model, read when /metrics is asked for.
    static func indexVectors(_ collection: String, model: String) -> Metrics.Gauge {
        Metrics.Gauge(label: "lookalike_index_vectors", dimensions: [("collection", collection), ("model", model)])
    }

    static func text() -> String {
        registry.emitToString()
    }
}
