// swift-tools-version: 6.1
// Microbenchmarks of ShmMailbox's hot paths, with ordo-one/benchmark (package-benchmark).
//
// A separate package so the main package's build and CI carry no benchmark dependencies.
// Run from this directory:  swift package --disable-sandbox benchmark
import PackageDescription

let package = Package(
    name: "ShmMailboxBenchmarks",
    dependencies: [
        .package(name: "ShmMailbox", path: ".."),
        // Only the MallocInterposer trait (for mallocCountTotal). The default traits also enable
        // "RuntimeInterposer", which on Linux with Swift 6.3 pulls in
        // ordo-one/swift-runtime-interposer: not in the offline package mirror, and only needed
        // for the ARC metrics, which these benchmarks don't use.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "MailboxBenchmarks",
            dependencies: [
                .product(name: "ShmMailbox", package: "ShmMailbox"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/MailboxBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
