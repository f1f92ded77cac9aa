import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// What goes wrong between a process and its server: nobody listening, credentials, a server
/// without JetStream, a smaller `max_payload`, a server killed mid-stream, a mailbox deleted under
/// a blocked receiver. Each is a typed error or, where the model promises it, no loss at all.
@Suite(.enabled(if: natsInstalled, "nats-server is not installed (apt-get install nats-server)"))
struct FailureTests {
    @Test func noServerIsAnErrorNamingTheURL() throws {
        // Port 1 on loopback: nothing listens there.
        let url = "nats://127.0.0.1:1"
        expectRemoteError({ error in
            guard case .unreachable(let urls, _) = error else { return false }
            return urls == [url] && error.description.contains(url)
        }) { try NATSConnection(url) }
    }

    @Test func credentialsAreRequiredAndAccepted() throws {
        let server = try NATSServer(options: .init(user: "alice", password: "s3cret"))
        expectRemoteError({ $0 == .authenticationFailed(urls: [server.url]) }) { try NATSConnection(server.url) }
        expectRemoteError({ $0 == .authenticationFailed(urls: [server.url]) }) {
            try NATSConnection(server.url, options: .init(user: "alice", password: "wrong"))
        }
        let connection = try NATSConnection(server.url, options: .init(user: "alice", password: "s3cret"))
        let box = try RemoteMailbox.create(uniqueRemoteName("auth"), on: connection)
        try box.send("in")
        let inURL = "nats://alice:s3cret@127.0.0.1:\(server.port)"
        #expect(try RemoteMailbox.open(box.name, on: NATSConnection(inURL)).receive(timeout: .seconds(5)).string == "in")

        let tokenServer = try NATSServer(options: .init(token: "t0ken"))
        expectRemoteError({ $0 == .authenticationFailed(urls: [tokenServer.url]) }) { try NATSConnection(tokenServer.url) }
        _ = try NATSConnection(tokenServer.url, options: .init(token: "t0ken"))
        _ = try NATSConnection("nats://t0ken@127.0.0.1:\(tokenServer.port)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "openssl is not installed"))
    func tlsIsRequiredAndVerified() throws {
        // A throwaway CA and a server certificate for 127.0.0.1, made with the openssl tool.
        let directory = NSTemporaryDirectory() + "shmmb-tls-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: directory + "/ext.cnf", atomically: true, encoding: .utf8)
        for command in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=shmmb-test-ca"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
             "-days", "1", "-extfile", "ext.cnf"],
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = command
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "openssl \(command[0]) failed")
        }
        let server = try NATSServer(options: .init(extraConfiguration: """
            tls {
              cert_file: "\(directory)/server.pem"
              key_file: "\(directory)/server.key"
            }
            """))
        // Plain text to a TLS-only server fails; TLS trusting our CA works end to end.
        expectRemoteError({ if case .unreachable = $0 { true } else { false } }) { try NATSConnection(server.url) }
        let connection = try NATSConnection(server.url, options: .init(tls: .init(caCertificatesFile: directory + "/ca.pem")))
        let box = try RemoteMailbox.create(uniqueRemoteName("tls"), on: connection)
        try box.send("over TLS")
        #expect(try box.receive(timeout: .seconds(5)).string == "over TLS")
    }

    @Test func aServerWithoutJetStreamIsSaidSo() throws {
        let server = try NATSServer(options: .init(jetStream: false))
        expectRemoteError({ if case .jetStreamUnavailable = $0 { true } else { false } }) { try NATSConnection(server.url) }
    }

    @Test func theServersMaxPayloadBoundsTheMessageSize() throws {
        let server = try NATSServer(options: .init(maxPayload: 8192))
        let connection = try NATSConnection(server.url)
        #expect(connection.maxPayload == 8192)
        expectRemoteError({ if case .invalidOptions = $0 { true } else { false } }) {
            try RemoteMailbox.create(uniqueRemoteName("payload"), on: connection, options: RemoteMailboxOptions(maxMessageSize: 8000))
        }
        let box = try RemoteMailbox.create(uniqueRemoteName("payload"), on: connection,
                                           options: RemoteMailboxOptions(maxMessageSize: 8192 - 1024))
        try box.send([UInt8](repeating: 9, count: 8192 - 1024))
        expectRemoteError({ $0 == .messageTooLarge(size: 8192 - 1023, limit: 8192 - 1024) }) {
            try box.send([UInt8](repeating: 9, count: 8192 - 1023))
        }
        #expect(try box.receive(timeout: .seconds(5)).bytes.count == 8192 - 1024)
    }

    @Test func aServerKilledAndRestartedMidStreamLosesAndDoublesNothing() throws {
        let server = try NATSServer()
        let options = NATSConnection.Options(name: "restart-test")
        let connection = try NATSConnection(server.url, options: options)
        let name = uniqueRemoteName("restart")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(capacity: 10_000))
        let total = 600
        let sender = Background {
            let sending = try RemoteMailbox.open(name, on: NATSConnection(server.url, options: options))
            try sendTestMessages(sending, sender: 3, count: total)
            return true
        }
        // Kill the server (SIGKILL) while the sender is busy, and bring it back on the same port
        // and store.
        let deadline = ContinuousClock.now + .seconds(20)
        while try box.depth < 100, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        _ = server.kill()
        Thread.sleep(forTimeInterval: 0.5)
        try server.restart()
        #expect(try sender.join(timeout: .seconds(60)))
        var next: UInt64 = 0
        while next < UInt64(total) {
            _ = try box.receiveBatch(limit: min(100, total - Int(next)), timeout: .seconds(10)) { bytes, _ in
                let (from, sequence) = try TestMessages.verify(bytes)
                #expect(from == 3 && sequence == next, "expected \(next), got \(sequence)")
                next = sequence + 1
            }
        }
        expectRemoteError({ $0 == .timedOut }) { try box.receive(timeout: .milliseconds(500)) }
    }

    @Test func aReceiverBlockedOnADeletedMailboxIsTold() throws {
        let server = try NATSServer()
        let connection = try NATSConnection(server.url)
        let name = uniqueRemoteName("deleted")
        _ = try RemoteMailbox.create(name, on: connection)
        let receiver = Background {
            do {
                _ = try RemoteMailbox.open(name, on: connection).receive()
                return "received"
            } catch {
                return "\(error)"
            }
        }
        Thread.sleep(forTimeInterval: 0.3)
        try RemoteMailbox.delete(name, on: connection)
        #expect(try receiver.join(timeout: .seconds(20)) == RemoteMailboxError.deleted(name).description)
    }
}
