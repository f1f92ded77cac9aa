import ShmMailbox
import ShmMailboxNATS

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
/// 2. After the take, before the journal entry is committed (state word set to 1): the local
///    message is unreleased, so ShmMailbox redelivers it (marked redelivered) to the next
///    receiver. The journal holds no unfinished entry (or a stale one of another message, whose
///    checksum does not match), so the message gets a fresh id and is published once.
/// 3. After the commit, before the server stored the message: redelivered locally; the journal
///    entry matches (redelivered, same length, same checksum), so the old id is reused and the
///    server stores the message for the first time.
/// 4. After the server stored it, before its acknowledgement arrived or before `finish`:
///    redelivered locally, the old id is reused, the server recognises the id and stores nothing
///    (it acknowledges the publish as a duplicate). Nothing doubled, provided the restart comes
///    within the remote mailbox's `duplicateWindow` (default two minutes).
/// 5. After `finish` (state word 0), before ShmMailbox's release of the message: redelivered
///    locally with no unfinished entry, so it is published again under a fresh id: a duplicate.
///    This is the one window left, a few instructions long (the closure's return into
///    ShmMailbox's release). `finish` must come before the release, not after it: left pending,
///    an entry could match a *later* message with the same bytes that a kill at point 2
///    redelivered, and reusing the id would make the server drop that message (a loss).
/// 6. After the release: nothing left to do.
///
/// The entry matches only a message that ShmMailbox marks redelivered, so a fresh message with
/// the same bytes as an unfinished entry is never mistaken for it. A message whose receiver was
/// another process (a competing local receiver) is not in this journal and is published as new.
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
                try local.receive(timeout: .milliseconds(200)) { bytes, _, redelivered in
                    relay(bytes, redelivered: redelivered)
                }
            } catch MailboxError.timedOut {
                continue
            } catch {
                terminate(status: 1, error: "local mailbox \"\(local.name)\": \(error)")
            }
        }
        local.close()
        remote.close()
        progress.set(.finished)
    }

    /// Publishes the message in hand and returns only when the server has it (see the kill
    /// points above). Never throws: a throw would release the message unsent.
    private func relay(_ bytes: UnsafeRawBufferPointer, redelivered: Bool) {
        let checksum = Checksum.of(bytes)
        let id: ExportJournal.MessageID
        if redelivered, let earlier = journal.unfinishedID(length: bytes.count, checksum: checksum) {
            // Kill points 3 and 4: the same message, under the same id.
            id = earlier
        } else {
            counter += 1
            id = ExportJournal.MessageID(run: runID, counter: counter)
            // Committed before the publish: from here a kill leads to reusing this id.
            journal.record(id, length: bytes.count, checksum: checksum)
        }
        publish(bytes, id: id.text)
        // Before the release (kill point 5): from here a kill leads to a fresh id.
        journal.finish()
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
                terminate(status: 1, error: "a message of \(size) bytes in local mailbox \"\(local.name)\" exceeds remote mailbox '\(remote.name)''s limit of \(limit) bytes; it stays in the local mailbox")
            } catch {
                terminate(status: 1, error: "remote mailbox '\(remote.name)': \(error)")
            }
            // Holding the message is fine while the process lives; once the grace is over, the
            // process ends with the message unreleased (kill point 3 or 4 for the next run).
            if patience.isExhausted() { progress.park(holding: "a message (remote mailbox full or server unreachable)") }
        }
    }
}
