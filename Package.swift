// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "ShmMailbox",
    products: [
        .library(name: "ShmMailbox", targets: ["ShmMailbox"]),
        .executable(name: "shmbox", targets: ["shmbox"]),
        .executable(name: "ringbench", targets: ["ringbench"]),
        // ringbench plus the NATS transports (nats-raw, nats). Needs libnats; `ringbench` does not.
        .executable(name: "ringbench-nats", targets: ["ringbench-nats"]),
        // Mailboxes across machines, carried by NATS JetStream. Needs libnats (apt: libnats-dev);
        // nothing above does.
        .library(name: "ShmMailboxNATS", targets: ["ShmMailboxNATS"]),
        // `shmbox bridge`: relays local mailboxes to remote ones and back (needs libnats; `shmbox`
        // itself does not, and runs this binary from its own directory).
        .executable(name: "shmbox-bridge", targets: ["shmbox-bridge"]),
        // A mailbox's messages handled by a swift-service-lifecycle `Service` (graceful shutdown
        // drains in-flight work). Needs swift-service-lifecycle; the core library does not.
        .library(name: "ShmMailboxService", targets: ["ShmMailboxService"]),
        // Slow-path events to swift-log and mailbox counters to swift-metrics; ShmMailbox itself
        // stays dependency-free.
        .library(name: "ShmMailboxMetrics", targets: ["ShmMailboxMetrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // ringbench's harness only (file descriptors without hand-written EINTR loops); the
        // ShmMailbox library itself stays dependency-free.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // ShmMailboxService only (MailboxService is a `Service`).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `swift package generate-documentation` (the DocC catalog in
        // Sources/ShmMailbox/ShmMailbox.docc). A command plugin only: it links into no target.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // ShmMailboxMetrics only.
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
    ],
    targets: [
        // Thin C layer, only what Swift cannot do itself: futex wait/wake, cpu pause, membarrier,
        // the SIGBUS guard (a signal handler) and the fork generation (a pthread_atfork handler).
        .target(name: "CShim", path: "CShim"),
        .target(name: "ShmMailbox", dependencies: ["CShim"], exclude: ["Layout/README.md"]),
        // The official NATS C client, found through pkg-config. Only ShmMailboxNATS and what
        // depends on it need it installed.
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .target(name: "ShmMailboxNATS", dependencies: ["ShmMailbox", "CNATS"]),
        // MailboxService: a mailbox's messages handled until a graceful shutdown.
        .target(
            name: "ShmMailboxService",
            dependencies: [
                "ShmMailbox",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // What `shmbox` and `shmbox-bridge` share: the exit statuses (sysexits), the one-line error
        // reports and the entry point that turns every failure into one. No libnats.
        .target(
            name: "ShmboxCLISupport",
            dependencies: [
                "ShmMailbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // MailboxLogging (core events to a swift-log Logger) and MailboxMetrics (statistics as
        // swift-metrics counters and gauges).
        .target(
            name: "ShmMailboxMetrics",
            dependencies: [
                "ShmMailbox",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "shmbox",
            dependencies: [
                "ShmMailbox", "ShmboxCLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "shmbox-bridge",
            dependencies: [
                "ShmMailbox", "ShmMailboxNATS", "ShmboxCLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Self-checking test messages, shared by the tests and their helper process.
        .target(name: "MailboxTestSupport", path: "Tests/MailboxTestSupport"),
        // A helper process spawned by a test (MailboxTestPeer, shmbox), for the test targets.
        .target(name: "PeerProcess", path: "Tests/PeerProcess"),
        // A helper process the tests spawn: it sends, receives and verifies messages.
        .executableTarget(
            name: "MailboxTestPeer",
            dependencies: ["ShmMailbox", "MailboxTestSupport"],
            path: "Tests/MailboxTestPeer"
        ),
        // Benchmark-only C: `mq_open` (variadic) for ringbench's POSIX message-queue transport,
        // `sched_setaffinity` for --pin (needs _GNU_SOURCE), and
        // the C floors (a plain SPSC ring, a spinning cache line, a bare futex) it measures as references.
        .target(name: "CBenchShim"),
        // Benchmark harness: transports (ShmMailbox, Unix sockets, pipes, POSIX mqueues, TCP, the C
        // floors), workloads and reports. Uses ShmMailbox's public API only; swift-system for its
        // own file handling (control pipes, /proc files, report files), not in the measured loops.
        .target(
            name: "RingBenchKit",
            dependencies: [
                "ShmMailbox", "CBenchShim",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The ringbench command line (subcommands and options), shared by `ringbench` and
        // `ringbench-nats`.
        .target(
            name: "RingBenchCLI",
            dependencies: [
                "RingBenchKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ringbench",
            dependencies: [
                "RingBenchCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // ringbench's NATS transports: nats-raw (plain libnats JetStream), nats (RemoteMailbox) and
        // nats-bridge (local mailboxes relayed by shmbox-bridge), each run against a nats-server
        // of its own. Registered into RingBenchKit from outside, so `ringbench` builds without
        // libnats.
        .target(name: "RingBenchNATS", dependencies: ["RingBenchKit", "ShmMailbox", "ShmMailboxNATS", "CNATS"]),
        .executableTarget(
            name: "ringbench-nats",
            dependencies: [
                "RingBenchNATS", "RingBenchCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "RingBenchNATSTests",
            dependencies: ["RingBenchNATS", "RingBenchKit", "ringbench-nats", "shmbox-bridge"]
        ),
        .testTarget(
            name: "RingBenchKitTests",
            dependencies: ["RingBenchKit", "ringbench"]
        ),
        // Send+receive loops in one process, run under callgrind by Benchmarks/instruction-counts.sh
        // (instructions and allocations per message against a committed baseline, in CI).
        .executableTarget(
            name: "instruction-counts",
            dependencies: ["ShmMailbox"],
            path: "Benchmarks/InstructionCounts"
        ),
        // Real nats-server processes for tests: single servers, JetStream clusters, network namespaces.
        .target(name: "NATSTestSupport", path: "Tests/NATSTestSupport"),
        .testTarget(name: "NATSTestSupportTests", dependencies: ["NATSTestSupport"]),
        // A helper process the remote-mailbox tests spawn (also inside network namespaces).
        .executableTarget(
            name: "NATSTestPeer",
            dependencies: ["ShmMailboxNATS", "MailboxTestSupport"],
            path: "Tests/NATSTestPeer"
        ),
        .testTarget(
            name: "ShmMailboxNATSTests",
            dependencies: ["ShmMailbox", "ShmMailboxNATS", "NATSTestSupport", "NATSTestPeer", "MailboxTestSupport",
                           "MailboxTestPeer", "shmbox-bridge"]
        ),
        // `shmbox bridge` end to end: a real nats-server, the bridge as a child process.
        .testTarget(
            name: "ShmMailboxBridgeTests",
            dependencies: ["ShmMailbox", "ShmMailboxNATS", "NATSTestSupport", "MailboxTestSupport", "shmbox-bridge", "shmbox"]
        ),
        // MailboxService under a real ServiceGroup, with senders in other processes and threads.
        .testTarget(
            name: "ShmMailboxServiceTests",
            dependencies: [
                "ShmMailbox", "ShmMailboxService", "MailboxTestSupport", "MailboxTestPeer", "PeerProcess",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ShmMailboxMetricsTests",
            dependencies: [
                "ShmMailbox", "ShmMailboxMetrics", "MailboxTestSupport", "MailboxTestPeer", "PeerProcess",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "ShmMailboxTests",
            dependencies: ["ShmMailbox", "CShim", "MailboxTestSupport", "MailboxTestPeer", "PeerProcess", "shmbox"]
        ),
    ]
)
