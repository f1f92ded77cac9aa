import Foundation
import Testing
@testable import ShmMailbox

/// The README's five-minute producer and consumer, as code the compiler checks (the name is a
/// parameter instead of "jobs"), run in either start order; and the README's handle-moving
/// patterns.
@Suite("README quick start", .timeLimit(.minutes(3)))
struct QuickStartTests {
    static func producer(_ name: String) throws {
        let options = MailboxOptions(capacity: 1024, maxMessageSize: 4096)
        let box = try Mailbox.openOrCreate(name, options: options)
        for job in 1...10 {
            try box.send("job \(job)")
        }
        try box.send("done")
    }

    static func consumer(_ name: String) async throws -> [String] {
        var seen: [String] = []
        let options = MailboxOptions(capacity: 1024, maxMessageSize: 4096)
        let box = try Mailbox.openOrCreate(name, options: options)
        for try await message in box.messages {
            if message.string == "done" { break }
            seen.append("\(message.string) from process \(message.sender)")
        }
        try Mailbox.delete(name)
        return seen
    }

    @Test("producer and consumer work in either start order, and again", arguments: [true, false])
    func eitherOrder(producerFirst: Bool) async throws {
        let name = uniqueName("quickstart")
        defer { try? Mailbox.delete(name) }
        let expected = (1...10).map { "job \($0) from process \(getpid())" }
        for _ in 0..<2 {
            if producerFirst {
                try Self.producer(name)
                #expect(try await Self.consumer(name) == expected)
            } else {
                let consuming = Task { try await Self.consumer(name) }
                try await Task.sleep(for: .milliseconds(50))
                try await Task.detached { try Self.producer(name) }.value
                #expect(try await consuming.value == expected)
            }
        }
    }

    @Test("the README shows this code")
    func readmeShowsIt() throws {
        let readme = try String(contentsOfFile: #filePath.replacingOccurrences(of: "Tests/ShmMailboxTests/QuickStartTests.swift", with: "README.md"), encoding: .utf8)
        for line in ["let box = try Mailbox.openOrCreate(\"jobs\", options: options)",
                     "for try await message in box.messages {",
                     "    try box.send(\"job \\(job)\")",
                     "try Mailbox.delete(\"jobs\")"] {
            #expect(readme.contains(line), "README lacks \(line)")
        }
    }

    @Test("a handle made in one task moves into another, detached or not")
    func handlesMove() async throws {
        let name = uniqueName("move")
        defer { try? Mailbox.delete(name) }
        let sender = try Mailbox.create(name, options: MailboxOptions(capacity: 4, maxMessageSize: 64))
        // Moved into a detached task: the compiler accepts it because nothing here uses
        // `sender` afterwards (region-based isolation).
        try await Task.detached { try sender.send("moved") }.value
        let receiver = try Mailbox.open(name)
        let text = try await Task { try await receiver.receive().string }.value
        #expect(text == "moved")
    }
}
