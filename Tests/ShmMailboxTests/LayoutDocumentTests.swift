import Foundation
import Testing
@testable import ShmMailbox

/// The segment format is documented in one place, `Sources/ShmMailbox/Layout/README.md`; these
/// tests read its tables and check every offset against the constants the code uses.
@Suite("Layout document matches the code")
struct LayoutDocumentTests {
    /// The README, found from this source file's path.
    static let document: String = {
        let here = URL(fileURLWithPath: #filePath)
        let readme = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/ShmMailbox/Layout/README.md")
        return (try? String(contentsOf: readme, encoding: .utf8)) ?? ""
    }()

    /// The rows of the table that follows `heading` whose header starts with `columns`: the
    /// backquoted field name and the offset column.
    static func offsets(after heading: String, offsetColumn: Int, fieldColumn: Int) -> [String: Int] {
        guard let start = document.range(of: heading) else { return [:] }
        var result: [String: Int] = [:]
        var inTable = false
        for line in document[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("|") {
                inTable = true
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard cells.count > max(offsetColumn, fieldColumn) + 1, let offset = Int(cells[offsetColumn + 1]) else { continue }
                let field = cells[fieldColumn + 1]
                guard field.hasPrefix("`"), let end = field.dropFirst().firstIndex(of: "`") else { continue }
                result[String(field[field.index(after: field.startIndex)..<end])] = offset
            } else if inTable {
                break
            }
        }
        return result
    }

    @Test func headerOffsets() {
        let documented = Self.offsets(after: "## Header\n", offsetColumn: 1, fieldColumn: 4)
        let code: [String: Int] = [
            "magic": SegmentLayout.magicOffset, "version": SegmentLayout.versionOffset,
            "ringKind": SegmentLayout.ringKindOffset, "segmentSize": SegmentLayout.segmentSizeOffset,
            "dataOffset": SegmentLayout.dataOffsetOffset, "dataSize": SegmentLayout.dataSizeOffset,
            "capacity": SegmentLayout.capacityOffset, "maxMessageSize": SegmentLayout.maxMessageSizeOffset,
            "slotStride": SegmentLayout.slotStrideOffset, "mode": SegmentLayout.modeOffset,
            "creatorPid": SegmentLayout.creatorPidOffset, "creatorStartTime": SegmentLayout.creatorStartTimeOffset,
            "createdAt": SegmentLayout.createdAtOffset, "ownership": SegmentLayout.ownershipOffset,
            "receiverPolicy": SegmentLayout.receiverPolicyOffset, "buffering": SegmentLayout.bufferingOffset,
            "sealedAt": SegmentLayout.sealedAtOffset, "generation": SegmentLayout.generationOffset,
            "nonce": SegmentLayout.nonceOffset, "tail": SegmentLayout.tailOffset, "head": SegmentLayout.headOffset,
            "readingUpTo": SegmentLayout.readingUpToOffset, "lastReceiver": SegmentLayout.lastReceiverOffset,
            "senderRole": SegmentLayout.senderRoleOffset, "receiverRole": SegmentLayout.receiverRoleOffset,
            "owner": SegmentLayout.ownerOffset, "lifecycle": SegmentLayout.lifecycleOffset,
            "unlinkClaim": SegmentLayout.unlinkClaimOffset, "turn": SegmentLayout.turnOffset,
            "pidNamespace": SegmentLayout.pidNamespaceOffset, "messagesBefore": SegmentLayout.messagesBeforeOffset,
            "rights": SegmentLayout.rightsOffset,
            "receivers": SegmentLayout.receiversOffset, "writeGeneration": SegmentLayout.writeGenerationOffset,
            "readGeneration": SegmentLayout.readGenerationOffset, "receiverLeases": SegmentLayout.receiverLeasesOffset,
            "repairs": SegmentLayout.repairsOffset, "fullWaits": SegmentLayout.fullWaitsOffset,
        ]
        #expect(documented == code)
        #expect(Self.document.contains("at `dataOffset = \(SegmentLayout.dataOffset)`"))
        #expect(Self.document.contains("# ShmMailbox segment format, version \(SegmentLayout.version)"))
    }

    @Test func eventLinesAndLeaseTable() {
        #expect(Self.document.contains("(the message event at \(SegmentLayout.messageEventOffset), the space event at \(SegmentLayout.spaceEventOffset), the role event at \(SegmentLayout.roleEventOffset);"))
        let event = Self.offsets(after: "## Event lines\n", offsetColumn: 0, fieldColumn: 2)
        #expect(event == ["word": EventLayout.word, "sleepers": EventLayout.sleepers, "waiting": EventLayout.waiting])
        let lease = Self.offsets(after: "## Lease table\n", offsetColumn: 0, fieldColumn: 2)
        #expect(lease == ["holder": SegmentLayout.leaseHolder, "tag": SegmentLayout.leaseTag, "roles": SegmentLayout.leaseRoles,
                          "firstSeen": SegmentLayout.leaseFirstSeen, "intent": SegmentLayout.leaseIntent,
                          "senderIntent": SegmentLayout.leaseSenderIntent])
        #expect(Self.document.contains("At \(SegmentLayout.leaseTableOffset): \(SegmentLayout.leaseCount) entries of \(SegmentLayout.leaseEntrySize) bytes"))
    }

    @Test func recordsAndSlots() {
        let record = Self.offsets(after: "Record header, at `data + index`:", offsetColumn: 0, fieldColumn: 2)
        #expect(record == ["stamp": SegmentLayout.recordStamp, "length": SegmentLayout.recordLength, "sender": SegmentLayout.recordSender])
        let slot = Self.offsets(after: "Slot header:", offsetColumn: 0, fieldColumn: 2)
        #expect(slot == ["length": SegmentLayout.slotLength, "kind": SegmentLayout.slotKind,
                         "sender": SegmentLayout.slotSender, "takenBy": SegmentLayout.slotTakenBy])
    }

    @Test func endpointOffsets() {
        let documented = Self.offsets(after: "The segment is `512 + tableCapacity × 128` bytes", offsetColumn: 1, fieldColumn: 4)
        #expect(documented == [
            "magic": EndpointLayout.magicOffset, "version": EndpointLayout.versionOffset,
            "tableCapacity": EndpointLayout.tableCapacityOffset, "segmentSize": EndpointLayout.segmentSizeOffset,
            "tableOffset": EndpointLayout.tableOffsetOffset, "entrySize": EndpointLayout.entrySizeOffset,
            "mode": EndpointLayout.modeOffset, "createdAt": EndpointLayout.createdAtOffset,
            "nonce": EndpointLayout.nonceOffset, "pidNamespace": EndpointLayout.pidNamespaceOffset,
            "holder": EndpointLayout.holderOffset, "tableChanges": EndpointLayout.tableChangesOffset,
        ])
        let entry = Self.offsets(after: "Incoming-link table entry `i`", offsetColumn: 0, fieldColumn: 2)
        #expect(entry == ["claim": EndpointLayout.entryClaimOffset, "state": EndpointLayout.entryStateOffset,
                          "length": EndpointLayout.entryLengthOffset, "name": EndpointLayout.entryNameOffset])
    }
}
