#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox
import ShmboxCLISupport

/// Sends the records of an input one by one, numbering them for error messages.
///
/// A record that fails stops the send with one error line naming its number and how many
/// messages were sent before it. With `keepGoing`, records whose data is bad (undecodable, or
/// too large for the mailbox) are skipped instead, each reported on standard error, and the
/// send fails at the end if any were skipped.
struct SendLoop {
    /// How records are separated and decoded.
    var format: MessageFormat
    /// Skip bad records instead of stopping.
    var keepGoing: Bool
    /// Sends one message; throws `MailboxError` or `CLIFailure`.
    var deliver: ([UInt8]) throws -> Void

    /// Opens `path` for reading, or returns standard input when nil.
    static func openInput(_ path: String?) throws(CLIFailure) -> Int32 {
        guard let path else { return STDIN_FILENO }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CLIFailure("cannot read --file \(path): \(String(cString: strerror(errno)))", status: .noInput)
        }
        return descriptor
    }

    /// Sends every record read from `descriptor` (`--raw`: all of it as one message).
    func run(reading descriptor: Int32) throws {
        var input = InputRecords(descriptor: descriptor)
        guard let separator = format.separator else {
            let bytes: [UInt8]
            do {
                bytes = try input.rest()
            } catch {
                throw CLIFailure("cannot read the input: \(error)", status: .noInput)
            }
            try deliver(bytes)
            return
        }
        var number = 0
        var sent = 0
        var skipped: [CLIFailure] = []
        while true {
            let record: [UInt8]?
            do {
                record = try input.next(separatedBy: separator)
            } catch {
                throw CLIFailure("cannot read \(format.recordName) \(number + 1) of the input: \(error); \(sent) sent before it",
                                 status: .noInput)
            }
            guard let record else { break }
            number += 1
            let failure: CLIFailure
            do {
                try deliver(try format.message(from: record))
                sent += 1
                continue
            } catch let error as FormatError {
                failure = CLIFailure(error.description, status: .dataError)
            } catch let error as MailboxError {
                failure = CLIFailure(error)
            } catch let error as CLIFailure {
                failure = error
            }
            let place = "\(format.recordName) \(number)"
            if keepGoing && failure.status == .dataError {
                printDiagnostic("shmbox: skipped \(place): \(failure.message)")
                skipped.append(failure)
                continue
            }
            throw CLIFailure("\(place): \(failure.message); \(Self.messages(sent)) sent before it", status: failure.status)
        }
        if let first = skipped.first {
            throw CLIFailure("skipped \(skipped.count) of \(number) \(format.recordName)s (bad data); \(Self.messages(sent)) sent",
                             status: first.status)
        }
    }

    /// "1 message", "3 messages".
    static func messages(_ count: Int) -> String {
        count == 1 ? "1 message" : "\(count) messages"
    }
}
