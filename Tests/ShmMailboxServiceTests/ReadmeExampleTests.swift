import Foundation
import Testing

/// The README's service example is the code compiled in ReadmeExample.swift.
@Suite("MailboxService README example")
struct ReadmeExampleTests {
    @Test("the README's \"Running a mailbox as a service\" example is ReadmeExample.swift's code")
    func readmeShowsCompiledExample() throws {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let readme = try String(contentsOf: tests.appending(path: "../../README.md").standardized, encoding: .utf8)
        let compiled = try String(contentsOf: tests.appending(path: "ReadmeExample.swift"), encoding: .utf8)
        let section = try #require(readme.range(of: "## Running a mailbox as a service\n"))
        let open = try #require(readme.range(of: "```swift\n", range: section.upperBound..<readme.endIndex))
        let close = try #require(readme.range(of: "```\n", range: open.upperBound..<readme.endIndex))
        let example = String(readme[open.upperBound..<close.lowerBound])
        #expect(example.hasPrefix("import ServiceLifecycle\n"))
        #expect(compiled.hasSuffix("\n" + example), "README.md's example differs from ReadmeExample.swift")
    }
}
