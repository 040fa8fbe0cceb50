import Foundation
import Metrics
import Prometheus

/// The server's metrics, through swift-metrics into a Prometheus registry, rendered at /metrics.
/// Hummingbird's metrics middleware adds request counts and latencies per route.
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

    static func inferenceTimer(_ kind: String) -> Metrics.Timer {
        Metrics.Timer(label: "lookalike_inference_seconds", dimensions: [("kind", kind)], preferredDisplayUnit: .seconds)
    }

    /// Items and vectors per collection, read when /metrics is asked for.
    static func indexSize(_ collection: String) -> Metrics.Gauge {
        Metrics.Gauge(label: "lookalike_collection_items", dimensions: [("collection", collection)])
    }

    static func text() -> String {
        registry.emitToString()
    }
}
