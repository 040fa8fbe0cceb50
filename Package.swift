// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Lookalike",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Lookalike", targets: ["Lookalike"]),
        // The parsers of untrusted bytes on their own, for the fuzzers in Fuzz/ (a package of its own).
        .library(name: "LookalikeParsers", targets: ["Storage", "VectorIndex", "HTTPForms"]),
        .executable(name: "lookalike", targets: ["lookalike"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        // libvips, with a shim header wrapping its variadic calls.
        .systemLibrary(
            name: "CVips",
            pkgConfig: "vips",
            providers: [.apt(["libvips-dev"])]
        ),
        // PostgreSQL's client library, libpq.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // BLAS (OpenBLAS), for the matrix products of metric learning.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Our own minimal declarations of the ONNX Runtime C API; the library is loaded with dlopen.
        .target(
            name: "COnnxRuntime",
            linkerSettings: [.linkedLibrary("dl")]
        ),
        // Small shared pieces (a reader-writer lock).
        .target(name: "LookalikeSupport"),
        .target(name: "Imaging", dependencies: ["CVips", "LookalikeSupport"]),
        .target(name: "Embedding", dependencies: ["COnnxRuntime", "Imaging"]),
        // Distance kernels of the vector index, with AVX2 versions chosen at run time.
        .target(name: "CVectorKernels"),
        .target(name: "VectorIndex", dependencies: ["CVectorKernels", "LookalikeSupport"]),
        // Metric learning: a linear projection trained on labelled vectors (`lookalike tune`).
        .target(name: "Tuning", dependencies: ["CBLAS", "LookalikeSupport"]),
        // The store seam: the `Store` protocol, items, metadata filters as a parsed tree.
        .target(name: "Storage"),
        // The SQLite store (GRDB), with its rendering of filters.
        .target(name: "Catalog", dependencies: ["Storage", .product(name: "GRDB", package: "GRDB.swift")]),
        // The PostgreSQL store (libpq, pgvector), with its rendering of filters.
        .target(name: "PostgresStore", dependencies: ["Storage", "CLibPQ"]),
        .target(
            name: "Lookalike",
            dependencies: [
                "Imaging", "Embedding", "VectorIndex", "Storage", "Catalog", "PostgresStore", "Tuning",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Request forms read without the HTTP stack: multipart bodies, query strings, search options.
        .target(name: "HTTPForms", dependencies: ["Imaging", "Storage"]),
        // The HTTP API and the web page (`lookalike serve`).
        .target(
            name: "LookalikeServer",
            dependencies: [
                "Lookalike", "HTTPForms",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Web")]
        ),
        .executableTarget(
            name: "lookalike",
            dependencies: [
                "Lookalike", "LookalikeServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The Swift side of `make bench-ann` (not a product: a tool of this repository).
        .executableTarget(name: "lookalike-bench", dependencies: ["VectorIndex", "Tuning"]),
        // Paths of the test data and small helpers, shared by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"]),
        .testTarget(name: "EmbeddingTests", dependencies: ["Embedding", "Imaging", "TestSupport"]),
        .testTarget(name: "VectorIndexTests", dependencies: ["VectorIndex", "LookalikeSupport"]),
        .testTarget(name: "TuningTests", dependencies: ["Tuning", "TestSupport"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "PostgresStore", "Storage", "TestSupport"]),
        .testTarget(name: "LookalikeTests", dependencies: ["Lookalike", "HTTPForms", "Imaging", "Embedding", "Catalog", "Storage", "VectorIndex", "Tuning", "lookalike", "TestSupport"]),
        .testTarget(
            name: "LookalikeServerTests",
            dependencies: [
                "LookalikeServer", "HTTPForms", "Lookalike", "Embedding", "Imaging", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
