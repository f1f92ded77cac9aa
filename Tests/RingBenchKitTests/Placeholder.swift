import Testing
@testable import RingBenchKit
