// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for the parsers that take untrusted bytes. Built only by `make fuzz` (see
// scripts/fuzz.sh), with -sanitize=fuzzer,address, never by `swift build` of the main package.
let package = Package(
    name: "LookalikeFuzz",
    dependencies: [.package(name: "Lookalike", path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "lookalike-fuzz", dependencies: ["FuzzDriver", .product(name: "LookalikeParsers", package: "Lookalike")]),
    ],
    swiftLanguageModes: [.v6]
)
