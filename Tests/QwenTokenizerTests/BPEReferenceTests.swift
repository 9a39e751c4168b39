import QwenFormats
import QwenTestSupport
import QwenTokenizer
import Testing

/// Cross-checks the BPE merge loop (both the short-word scan and the long-word heap) against a naive
/// reference written from the definition, on random single-piece words.
@Suite("BPE against a naive reference")
struct BPEReferenceTests {
    /// Naive byte-level BPE: repeatedly merge the adjacent pair with the lowest rank, leftmost first.
    struct Reference {
        var ranks: [String: Int] = [:]   // "a b" -> rank
        var vocab: [String: Int32] = [:]

        init(_ json: JSON) throws {
            for (k, v) in try #require(json["model"]?["vocab"]?.object) { vocab[k] = Int32(v.int ?? -1) }
            for (r, m) in try #require(json["model"]?["merges"]?.array).enumerated() {
                let parts = m.array?.compactMap(\.string) ?? (m.string ?? "").split(separator: " ").map(String.init)
                if ranks["\(parts[0]) \(parts[1])"] == nil { ranks["\(parts[0]) \(parts[1])"] = r }
            }
        }

        func encode(_ text: String) -> [Int32] {
            let byteLevel: [Character] = {
                var table: [Character] = []
                var n = 0
                for b in 0 ..< 256 {
                    let printable = (0x21 ... 0x7E).contains(b) || (0xA1 ... 0xAC).contains(b) || (0xAE ... 0xFF).contains(b)
                    table.append(Character(Unicode.Scalar(UInt32(printable ? b : 256 + n))!))
                    if !printable { n += 1 }
                }
                return table
            }()
            var symbols = text.utf8.map { String(byteLevel[Int($0)]) }
            while symbols.count > 1 {
                var best: (rank: Int, at: Int)?
                for i in 0 ..< symbols.count - 1 {
                    if let r = ranks[symbols[i] + " " + symbols[i + 1]], best == nil || r < best!.rank { best = (r, i) }
                }
                guard let (_, at) = best else { break }
                symbols[at] += symbols[at + 1]
                symbols.remove(at: at + 1)
            }
            return symbols.map { vocab[$0] ?? -1 }
        }
    }

    @Test func randomWords() throws {
        let tok = try #require(Shared.tiny)
        let reference = try Reference(JSON.parseFile(Paths.tinyTokenizer + "/tokenizer.json"))
        var rng = SplitMix64(seed: 7)
        // letters only, so that each word is a single pre-token; few distinct letters so merges abound
        let alphabets: [[String]] = [["a", "e", "i", "n", "r", "s", "t"], ["t", "h", "e"], ["的", "是", "一", "不"],
                                     ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "o", "p", "u"]]
        var mismatches = 0
        for trial in 0 ..< 1500 {
            let alphabet = alphabets[trial % alphabets.count]
            let length = trial % 3 == 0 ? 1 + Int(rng.next() % 400) : 1 + Int(rng.next() % 40)
            let word = (0 ..< length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
            let got = tok.encode(word, parseSpecial: false)
            let expected = reference.encode(word)
            if got != expected {
                mismatches += 1
                if mismatches < 5 { print("BPE mismatch for '\(word)': \(firstDifference(got, expected))") }
            }
        }
        #expect(mismatches == 0)
    }
}

/// The normalizer's fast path: scalars it treats as unaffected by NFC really are, in context.
@Suite("NFC fast path")
struct NFCFastPathTests {
    @Test func inertRangesAreNFCStable() throws {
        let tok = try #require(Shared.tiny)
        let ranges: [ClosedRange<UInt32>] = [0x3000 ... 0x3029, 0x3400 ... 0x9FFF, 0xFF01 ... 0xFF5E, 0x1F000 ... 0x1FAFF]
        var bad: [UInt32] = []
        for r in ranges {
            for v in r {
                guard let u = Unicode.Scalar(v) else { continue }
                // alone, after a starter, before a combining mark (which forces normalization of the span)
                let s = String(Character(u))
                let samples = ["a" + s + "b", s + s, "\u{3042}" + s]
                for text in samples where Array(text.utf8) != text._nfcCodeUnits { bad.append(v) }
                if u.properties.canonicalCombiningClass.rawValue != 0 { bad.append(v) }
            }
        }
        #expect(bad.isEmpty, "not NFC-inert: \(bad.prefix(20).map { String($0, radix: 16) })")
        // and encoding a mix with a combining mark still normalizes the whole span
        #expect(tok.decode(tok.encode("中文e\u{301}，", parseSpecial: false)) == Array("中文é，".utf8))
    }
}
