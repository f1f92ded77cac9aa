import ShmMailbox
import ShmMailboxNATS
import ShmboxCLISupport

/// Drains a local mailbox into a remote one: each local message is published to the remote
/// mailbox, and released locally only after the NATS server acknowledged storing it.
///
/// The message is read in place (zero-copy `receive`), and the receive closure, which holds it,
/// returns only once the publish is acknowledged: returning is what releases it. The journal
/// (`ExportJournal`) records the NATS message id and the message's length and checksum before
/// the publish, so that a redelivered message gets the id it had, and the server's
/// de-duplication (the remote mailbox's `duplicateWindow`) drops a second copy.
///
/// Kill points (`kill -9` of the bridge; the restarted bridge uses the same journal):
///
/// 1. Before the local receive takes a message: nothing happened.
/// 2. After the take, before the journal entry is committed (its state word set to in hand):
///    the local message is unreleased, so ShmMailbox redelivers it (marked redelivered) to the
///    next receiver. No entry describes it, so it gets a fresh id and is published once.
/// 3. After the commit, before the server stored the message: at restart the entry becomes
///    *awaiting*. ShmMailbox redelivers the message — not necessarily next: after up to
///    capacity − 1 later messages, which get fresh entries meanwhile — and when a message marked
///    redelivered with the entry's length, checksum and sender turns up, the old id is reused:
///    the server stores it for the first time.
/// 4. After the server stored it, before its acknowledgement arrived or before `finish`: as 3,
///    and the server recognises the reused id and stores nothing (it acknowledges a duplicate).
///    Nothing doubled, provided the message turns up within the remote mailbox's
///    `duplicateWindow` (default two minutes) after the first publish.
/// 5. After `finish` (entry free), before ShmMailbox's release of the message: redelivered
///    locally with no entry, so it is published again under a fresh id: a duplicate. This is the
///    one window left, a few instructions long (the closure's return into ShmMailbox's release).
///    `finish` must come before the release, not after it: left awaiting, the entry could match
///    a *later* message with the same bytes and sender that a kill at point 2 redelivered, and
///    reusing the id would make the server drop that message (a loss).
/// 6. After the release: nothing left to do.
///
/// An entry matches only a message that ShmMailbox marks redelivered, so a fresh message with
/// the same bytes is never mistaken for it. What is left: two messages with the same bytes from
/// the same sender, both left in hand by killed runs — the second would be taken for the first
/// and dropped by the server. A message whose receiver was another process (a competing local
/// receiver) is not in this journal and is published as new.
final class ExportRelay: @unchecked Sendable { // used by its one relay thread only
    let local: Mailbox
    let remote: RemoteMailbox
    let progress: RelayProgress
    private let journal: ExportJournal
    /// Random per start: message ids from this run never collide with earlier runs' ids.
    private let runID = UInt64.random(in: 1 ... .max)
    private var counter: UInt64 = 0

    init(local: Mailbox, remote: RemoteMailbox, journal: ExportJournal) {
        self.local = local
        self.remote = remote
        self.journal = journal
        progress = RelayProgress(label: "export \(local.name)->\(remote.name)")
    }

    /// Relays until a stop is requested (then returns with nothing in hand).
    func run() {
        while !Shutdown.isRequested {
            do {
                // A bounded wait, so that a stop request is seen while the mailbox is empty.
                try local.receive(timeout: .milliseconds(200)) { bytes, sender, redelivered in
                    bytes.withUnsafeBytes { relay($0, sender: sender.pid, redelivered: redelivered) }
                }
            } catch MailboxError.timedOut {
                continue
            } catch {
                terminate(CLIFailure("local mailbox \"\(local.name)\": \(error)", status: (error as? MailboxError)?.exitStatus ?? .failure))
            }
        }
        local.close()
        remote.close()
        progress.set(.finished)
    }

    /// Publishes the message in hand and returns only when the server has it (see the kill
    /// points above). Never throws: a throw would release the message unsent.
    private func relay(_ bytes: UnsafeRawBufferPointer, sender: Int32, redelivered: Bool) {
        let checksum = Checksum.of(bytes)
        let id: ExportJournal.MessageID
        let entry: Int
        if redelivered, let earlier = journal.awaiting(length: bytes.count, checksum: checksum, sender: sender) {
            // Kill points 3 and 4: the same message, under the same id.
            (entry, id) = earlier
        } else {
            counter += 1
            id = ExportJournal.MessageID(run: runID, counter: counter)
            // Committed before the publish: from here a kill leads to reusing this id.
            entry = journal.record(id, length: bytes.count, checksum: checksum, sender: sender)
        }
        publish(bytes, id: id.text)
        // Before the release (kill point 5): from here a kill leads to a fresh id.
        journal.finish(entry)
        progress.count()
    }

    /// Publishes under `id` until the server acknowledges it, retrying (same id) while the
    /// remote mailbox is full or the server does not answer.
    private func publish(_ bytes: UnsafeRawBufferPointer, id: String) {
        var patience = Shutdown.Patience()
        while true {
            do {
                try remote.send(bytes, timeout: .seconds(1), messageID: id)
                return
            } catch .timedOut, .sendUnconfirmed {
                // Full, or no answer (the message may be stored): the same id again settles it.
            } catch .messageTooLarge(let size, let limit) {
                terminate(CLIFailure("a message of \(size) bytes in local mailbox \"\(local.name)\" exceeds remote mailbox '\(remote.name)''s limit of \(limit) bytes; it stays in the local mailbox", status: .dataError))
            } catch {
                terminate(CLIFailure("remote mailbox '\(remote.name)': \(error)", status: error.exitStatus))
            }
            // Holding the message is fine while the process lives; once the grace is over, the
            // process ends with the message unreleased (kill point 3 or 4 for the next run).
            if patience.isExhausted() { progress.park(holding: "a message (remote mailbox full or server unreachable)") }
        }
    }
}
