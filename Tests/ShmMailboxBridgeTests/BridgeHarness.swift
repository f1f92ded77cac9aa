import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// What the bridge tests share: the built executables, unique names, a private state directory,
/// bridge processes, and the checks on relayed test messages.
final class BridgeHarness: @unchecked Sendable {
    let server: NATSServer
    let connection: NATSConnection
    /// Unique per harness: `brt<pid>x<n>`, a valid local and remote mailbox name.
    let prefix: String
    let stateDirectory: String
    private var bridges: [SpawnedProcess] = []
    private var localNames: [String] = []

    private nonisolated(unsafe) static var counter = 0
    private static let lock = NSLock()

    init() throws {
        server = try NATSServer()
        connection = try NATSConnection(server.url)
        let n = Self.lock.withLock { Self.counter += 1; return Self.counter }
        prefix = "brt\(getpid())x\(n)"
        stateDirectory = NSTemporaryDirectory() + "shmmb-bridge-\(getpid())-\(n)"
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
    }

    deinit {
        for bridge in bridges where bridge.isRunning { _ = bridge.killAndWait() }
        for name in localNames { try? Mailbox.delete(name) }
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    /// The directory of the test runner, where SwiftPM also puts the executables.
    static var buildDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // swift-testing may run from inside the .xctest bundle's directory.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("shmbox-bridge").path),
              directory.path != "/" {
            directory = directory.deletingLastPathComponent()
        }
        return directory.path
    }

    /// A local mailbox name that is removed with the harness.
    func localName(_ suffix: String) -> String {
        let name = prefix + suffix
        localNames.append(name)
        return name
    }

    /// Starts `shmbox-bridge` with the server, the state directory and `arguments`.
    func startBridge(_ arguments: [String]) throws -> SpawnedProcess {
        let log = stateDirectory + "/bridge-\(bridges.count).log"
        let bridge = try SpawnedProcess(executable: Self.buildDirectory + "/shmbox-bridge",
                                        arguments: ["--nats", server.url, "--state-dir", stateDirectory] + arguments,
                                        standardOutputPath: log, standardErrorPath: log)
        bridges.append(bridge)
        return bridge
    }

    /// Opens remote mailbox `name`, waiting up to 10 s for a bridge to create it.
    func openRemote(_ name: String) throws -> RemoteMailbox {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try RemoteMailbox.open(name, on: connection)
            } catch {
                guard error == .notFound(name), ContinuousClock.now < deadline else { throw error }
                usleep(20_000)
            }
        }
    }

    /// Every bridge's standard error so far, for a failure report.
    var bridgeLogs: String {
        bridges.enumerated().map { "--- bridge \($0.offset) (\($0.element.poll().map(\.description) ?? "running")):\n\($0.element.standardError())" }
            .joined(separator: "\n")
    }

}

/// Checks relayed test messages: every byte, no duplicate, per-sender order, and at the end none
/// missing.
struct DeliveryLedger {
    private(set) var received: [UInt32: [UInt64]] = [:]
    private(set) var failures: [String] = []
    private(set) var duplicates = 0
    /// The first duplicates, as `sender/sequence@position` (position: the how-many-th message received).
    private(set) var duplicateKeys: [String] = []
    private(set) var outOfOrder = 0
    private var seen = Set<UInt64>()
    var count: Int { seen.count }

    mutating func note(_ bytes: UnsafeRawBufferPointer) {
        do {
            let (sender, sequence) = try TestMessages.verify(bytes)
            let length = TestMessages.length(sender: sender, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 600)
            try TestMessages.verify(bytes, sender: sender, sequence: sequence, length: length)
            guard seen.insert(UInt64(sender) << 40 | sequence).inserted else {
                duplicates += 1
                if duplicateKeys.count < 5 { duplicateKeys.append("\(sender)/\(sequence)@\(seen.count)") }
                return
            }
            if let last = received[sender]?.last, sequence < last { outOfOrder += 1 }
            received[sender, default: []].append(sequence)
        } catch {
            failures.append(error.description)
        }
    }

    /// How many of `perSender` messages from each of `senders` never came.
    func missing(senders: [UInt32], perSender: Int) -> Int {
        senders.reduce(0) { total, sender in
            total + (0..<UInt64(perSender)).filter { !seen.contains(UInt64(sender) << 40 | $0) }.count
        }
    }
}

/// Test message `sequence` of `sender` (20-600 bytes, self-checking).
func bridgeMessage(sender: UInt32, sequence: UInt64) -> [UInt8] {
    TestMessages.make(sender: sender, sequence: sequence,
                      length: TestMessages.length(sender: sender, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 600))
}
