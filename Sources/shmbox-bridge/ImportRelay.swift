#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox
import ShmMailboxNATS
import ShmboxCLISupport

/// Feeds a remote mailbox into a local one: each remote message is sent into the local mailbox,
/// and acknowledged to the server only after the local send succeeded. A full local mailbox
/// blocks the relay, the remote messages wait on the server, and remote senders block in turn:
/// nothing is dropped.
///
/// Messages are fetched in batches (one round trip for up to `batch` messages, and their
/// acknowledgements sent together, the last one waited for). Right after each local send the
/// message's stream sequence is committed to the journal (`ImportJournal`); the slots are
/// emptied once the batch's acknowledgements are confirmed.
///
/// Kill points (`kill -9` of the bridge; the restarted bridge uses the same journal):
///
/// 1. Before a fetch, or after it and before a message's local send completed: the message is
///    unacknowledged and not in the local mailbox. The server redelivers it after the remote
///    mailbox's `redeliveryDelay` (to the restarted bridge or another receiver). Nothing lost,
///    nothing doubled. (A send interrupted half-way publishes nothing: ShmMailbox's own crash
///    safety.)
/// 2. After the local send completed, before the journal store: the message is in the local
///    mailbox, unacknowledged and unrecorded: the server redelivers it and it is sent again, a
///    duplicate. This is the one window left: the return from ShmMailbox's send to the one
///    8-byte store into the mapped journal, with no system call in between (the receiver's
///    wake-up is deferred past the store by `Mailbox.batch`; a signal is delivered at a kernel
///    entry, so only an interrupt landing in those instructions can open it). (Recording
///    *before* the send instead would turn this window into a loss.)
/// 3. After the journal store, before the server has the acknowledgement (for a pack delivered
///    in part, the progress record; see `RemoteMailbox.batch`): at start the restarted bridge
///    removes every recorded message still in the stream (`settle`): a message still there is
///    one never acknowledged, and sequences are never reused within one incarnation. It is then
///    never redelivered. Of a pack only some of whose messages were delivered, the recorded
///    progress is raised instead, so that whoever takes the pack next skips them. If the restart comes later than the
///    `redeliveryDelay`, another receiver may have been given it meanwhile: a duplicate that only
///    a prompt restart (or a longer delay) avoids.
/// 4. After the acknowledgement, before the slot is emptied: `settle` finds the message gone.
///
/// While running, a message redelivered because an acknowledgement was lost on the way (a
/// reconnect) is recognised by its sequence among the recently relayed ones and acknowledged
/// again without a second local send.
final class ImportRelay: @unchecked Sendable { // used by its one relay thread only
    let remote: RemoteMailbox
    let local: Mailbox
    let progress: RelayProgress
    private let journal: ImportJournal
    private let batch: Int
    private var recent = RecentSequences(capacity: 1 << 16)

    init(remote: RemoteMailbox, local: Mailbox, journal: ImportJournal, batch: Int) {
        self.remote = remote
        self.local = local
        self.journal = journal
        self.batch = min(batch, ImportJournal.capacity)
        progress = RelayProgress(label: "import \(remote.name)->\(local.name)")
    }

    /// Settles what a killed run left (kill points 3 and 4). Must run before the first fetch.
    func recover() throws(CLIFailure) {
        do {
            journal.adopt(incarnation: try remote.incarnation)
        } catch {
            throw CLIFailure("remote mailbox '\(remote.name)': \(error)", status: error.exitStatus)
        }
        settle()
    }

    /// Relays until a stop is requested (then returns with nothing in hand).
    func run() {
        while !Shutdown.isRequested {
            var delivered = 0
            do {
                _ = try remote.receiveBatch(limit: batch, timeout: .milliseconds(250)) { bytes, _, redelivered, sequence, index in
                    let word = ImportJournal.word(sequence: sequence, index: index)
                    if redelivered && recent.contains(word) {
                        // Sent into the local mailbox before; the acknowledgement that follows
                        // this return is all that was missing.
                        return
                    }
                    // In a batch of its own, so that the receiver's wake-up (a futex syscall, where
                    // a pending SIGKILL is delivered) comes after the journal store: between the
                    // message becoming visible and its record there is no system call, and kill
                    // point 2 shrinks to a few user-mode instructions an interrupt must hit.
                    local.batch {
                        deliver(bytes)
                        // The commit point (kill point 2 ends here): one store into the mapped file.
                        journal.record(word, slot: delivered)
                    }
                    delivered += 1
                    recent.insert(word)
                    progress.count()
                }
                // The batch's acknowledgements are confirmed: the slots are no longer needed.
                journal.clear(count: delivered)
            } catch RemoteMailboxError.timedOut {
                continue
            } catch let error as RemoteMailboxError {
                switch error {
                case .deleted, .closed, .notFound, .notAMailbox:
                    terminate(CLIFailure("remote mailbox '\(remote.name)': \(error)", status: error.exitStatus))
                case .malformedMessage:
                    // Removed from the stream already: said, and the relay goes on. What this
                    // batch delivered before it is settled as after any failed call.
                    printDiagnostic("shmbox bridge: \(progress.label): \(error)")
                    if delivered > 0 { settle() }
                default:
                    // An acknowledgement (or a fetch) failed: whatever this batch delivered may
                    // come again, so take it out of the stream now.
                    if delivered > 0 { settle() }
                }
            } catch {
                terminate(CLIFailure("remote mailbox '\(remote.name)': \(error)", status: .failure))
            }
        }
        remote.close()
        local.close()
        progress.set(.finished)
    }

    /// Sends the message in hand into the local mailbox, waiting while it is full. Never gives
    /// the message up: on a hard local error or after the shutdown grace the process ends with
    /// it unacknowledged (kill point 1 for the server).
    private func deliver(_ bytes: UnsafeRawBufferPointer) {
        var patience = Shutdown.Patience()
        while true {
            do {
                try local.send(bytes, timeout: .milliseconds(200))
                return
            } catch .timedOut {
                if patience.isExhausted() { progress.park(holding: "a message (local mailbox full)") }
            } catch {
                terminate(CLIFailure("local mailbox \"\(local.name)\": \(error)", status: error.exitStatus))
            }
        }
    }

    /// Removes every recorded message still in the stream, then empties the slots. Retries while
    /// the server cannot be reached; a stop request past the grace leaves the slots for the next
    /// run.
    private func settle() {
        var patience = Shutdown.Patience()
        var reported = false
        for (sequence, handed) in journal.recorded {
            while true {
                do {
                    // A pack delivered in part has its progress raised instead.
                    try remote.discard(sequence: sequence, handed: handed)
                    for index in 0..<handed { recent.insert(ImportJournal.word(sequence: sequence, index: index)) }
                    break
                } catch .deleted, .closed, .notFound, .notAMailbox {
                    terminate(CLIFailure("remote mailbox '\(remote.name)' is gone", status: .unavailable))
                } catch {
                    // Not silently: a bridge that cannot settle does not relay.
                    if !reported { printDiagnostic("shmbox bridge: \(progress.label): cannot yet remove message \(sequence) delivered before a restart (\(error)); retrying") }
                    reported = true
                    if patience.isExhausted() { terminate(status: 0) }
                    sleepBriefly()
                }
            }
        }
        journal.clear(count: ImportJournal.capacity)
    }

    private func sleepBriefly() {
        var request = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        _ = nanosleep(&request, nil)
    }
}

/// The last `capacity` messages relayed (`ImportJournal.word`s), for recognising a redelivery in
/// constant time.
struct RecentSequences {
    private var members = Set<UInt64>()
    private var order: [UInt64]
    private var next = 0

    init(capacity: Int) {
        order = Array(repeating: 0, count: capacity)
        members.reserveCapacity(capacity)
    }

    func contains(_ sequence: UInt64) -> Bool { members.contains(sequence) }

    mutating func insert(_ sequence: UInt64) {
        guard members.insert(sequence).inserted else { return }
        let evicted = order[next]
        if evicted != 0 { members.remove(evicted) }
        order[next] = sequence
        next = (next + 1) % order.count
    }
}
