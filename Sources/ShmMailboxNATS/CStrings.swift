#if canImport(Glibc)
import Glibc
#endif

/// C strings that must outlive one libnats call whose configuration structs point at them:
/// each `make` copies a Swift string; all are freed when the bag goes away.
final class CStrings {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    func make(_ text: String) -> UnsafePointer<CChar> {
        let copy = strdup(text)!
        pointers.append(copy)
        return UnsafePointer(copy)
    }

    deinit { pointers.forEach { free($0) } }
}
