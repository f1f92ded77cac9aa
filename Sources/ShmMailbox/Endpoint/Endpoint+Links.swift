/// Retiring links: an incoming link whose sender has gone and that is empty gives its table
/// entry back, so that an endpoint can hear from any number of senders over its life.
extension Endpoint {
    /// Whether `link` was retired (its sender role is `LeaseWord.retired`): it is finished, and a
    /// sender that wants to send to the receiver again replaces it with a new link.
    static func isRetired(_ link: Mailbox) -> Bool {
        LeaseWord(at: SegmentLayout.senderRoleOffset, in: link.segment.base).holder == LeaseWord.retired
    }

    /// Retires every link to the endpoint of `table` whose sender role is free or held by a
    /// dead process and that holds no message: marks its sender role retired (so no sender can
    /// use it again; a CAS on the role value judged, so a sender that took the role meanwhile
    /// keeps it), removes its name, and frees its entry. Returns how many entries it freed.
    /// Anyone may do this: the holder when its table is filling up, a sender that found it full.
    @discardableResult
    static func retireFinishedLinks(to table: EndpointSegment, liveness: some Liveness) -> Int {
        guard let entries = try? table.entries() else { return 0 }
        var freed = 0
        for entry in entries {
            let link: Mailbox
            do {
                link = try Mailbox.open(EndpointName.link(from: entry.sender, to: table.endpoint), waitStrategy: .block, patience: .zero)
            } catch .notFound {
                if table.free(entry) { freed += 1 }
                continue
            } catch {
                continue
            }
            guard link.kind == .oneToOne else { continue }
            let role = LeaseWord(at: SegmentLayout.senderRoleOffset, in: link.segment.base)
            let sender = role.holder
            if sender != LeaseWord.retired {
                // Judged in this order: the role is free or dead, and (after that) the link is
                // empty; a dead or absent sender cannot add a message, and a sender that takes
                // the role after our judgement makes the CAS below fail.
                guard sender == 0 || !liveness.isAlive(sender), link.depth == 0,
                      role.replace(sender, with: LeaseWord.retired) else { continue }
                crashPoint(.endpointAfterRetire)
            }
            _ = link.segment.unlinkIfSame()
            if table.free(entry) { freed += 1 }
        }
        return freed
    }
}
