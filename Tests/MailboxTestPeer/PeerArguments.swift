/// The command line of a peer command: its words, read as strings or numbers; a missing or
/// malformed one ends the peer with a reason.
struct PeerArguments {
    let words: [String]

    init(_ words: [String]) {
        self.words = words
    }

    /// Word `index` (0 is the command).
    func string(_ index: Int) -> String {
        guard index < words.count else { fail("\(words[0]): missing argument \(index)") }
        return words[index]
    }

    /// Word `index` as a number.
    func number(_ index: Int) -> Int {
        guard let value = Int(string(index)) else { fail("\(words[0]): argument \(index) is not a number") }
        return value
    }
}
