/// A box the first-generation Qwen-VL names in its answer: `<ref>the dog</ref><box>(x1,y1),(x2,y2)</box>`, with
/// coordinates normalized to 0...1000 (values outside are kept, as the reference keeps them).
public struct GroundingBox: Sendable, Equatable {
    /// The referring text right before the box (trimmed), if the element before it is a `<ref>`.
    public var ref: String?
    /// Byte range of the trimmed reference text in the parsed UTF-8 text.
    public var refBytes: Range<Int>?
    public var x1: Int, y1: Int, x2: Int, y2: Int

    /// The box in pixels of an image of this size: v / 1000 · size, truncated toward zero (the reference's
    /// `int(v / 1000 * w)`), not clamped to the image (only to ±2^31, where a coordinate has no meaning left).
    public func pixels(width: Int, height: Int) -> (x1: Int, y1: Int, x2: Int, y2: Int) {
        func scale(_ v: Int, _ size: Int) -> Int {
            let limit = Double(Int32.max)
            return Int(min(max(Double(v) / 1000 * Double(size), -limit), limit).rounded(.towardZero))
        }
        return (scale(x1, width), scale(y1, height), scale(x2, width), scale(y2, height))
    }
}

/// Qwen-VL's grounding syntax, parsed as the original `tokenization_qwen.py` does (`to_list_format`, then
/// `_fetch_all_box_with_ref`): the text splits into elements at the tags `<ref>`, `<box>`, `<quad>`, `<img>`; each
/// box holds four integers once the parentheses are removed, and takes the reference only of the element right
/// before it. Where the reference raises (a box without four integers, an unclosed tag), this skips that box or
/// stops at the unclosed tag, so partly generated or odd answers still give their valid boxes.
public enum Grounding {
    public static func boxes(in text: String) -> [GroundingBox] {
        let bytes = Array(text.utf8)
        let tags: [(open: [UInt8], close: [UInt8], kind: Kind)] = [
            (Array("<ref>".utf8), Array("</ref>".utf8), .ref), (Array("<box>".utf8), Array("</box>".utf8), .box),
            (Array("<quad>".utf8), Array("</quad>".utf8), .other), (Array("<img>".utf8), Array("</img>".utf8), .other),
        ]
        var result: [GroundingBox] = []
        var previous: (kind: Kind, content: Range<Int>)? = nil
        // each tag's next opening at or after i, searched again only once i has passed it (nil: none further), so
        // the parse stays linear in the text
        var next: [Int?] = tags.map { find($0.open, in: bytes, from: 0) }
        var i = 0
        while i < bytes.count {
            for k in tags.indices where next[k].map({ $0 < i }) ?? false { next[k] = find(tags[k].open, in: bytes, from: i) }
            guard let k = tags.indices.filter({ next[$0] != nil }).min(by: { next[$0]! < next[$1]! }) else { break }
            let start = next[k]!, tag = tags[k]
            if start > i { previous = (.text, i ..< start) }
            let contentStart = start + tag.open.count
            guard let end = find(tag.close, in: bytes, from: contentStart) else { break }  // unclosed: the rest is not parsed
            let content = contentStart ..< end
            if tag.kind == .box, let c = coordinates(bytes[content]) {
                var box = GroundingBox(x1: c[0], y1: c[1], x2: c[2], y2: c[3])
                if let p = previous, p.kind == .ref {
                    let r = trimmed(bytes, p.content)
                    box.ref = String(decoding: bytes[r], as: UTF8.self)
                    box.refBytes = r
                }
                result.append(box)
            }
            previous = (tag.kind, content)
            i = end + tag.close.count
        }
        return result
    }

    enum Kind { case text, ref, box, other }

    static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard needle.count <= bytes.count else { return nil }
        var i = start
        while i + needle.count <= bytes.count {
            if bytes[i] == needle[0], bytes[i ..< i + needle.count].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// Python's `str.strip()` whitespace (ASCII part).
    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09 ... 0x0D).contains(b) || (0x1C ... 0x1F).contains(b) }

    static func trimmed(_ bytes: [UInt8], _ r: Range<Int>) -> Range<Int> {
        var lo = r.lowerBound, hi = r.upperBound
        while lo < hi, isSpace(bytes[lo]) { lo += 1 }
        while hi > lo, isSpace(bytes[hi - 1]) { hi -= 1 }
        return lo ..< hi
    }

    /// `tuple(map(int, s.replace('(', '').replace(')', '').split(',')))` of exactly four values; nil where the
    /// reference would raise. Python's int(): surrounding whitespace, an optional sign, ASCII digits ('_' between
    /// digits too).
    static func coordinates(_ content: ArraySlice<UInt8>) -> [Int]? {
        let kept = content.filter { $0 != UInt8(ascii: "(") && $0 != UInt8(ascii: ")") }
        let fields = kept.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard fields.count == 4 else { return nil }
        var values: [Int] = []
        for f in fields {
            let field = Array(f)
            let r = trimmed(field, 0 ..< field.count)
            var digits = field[r]
            var negative = false
            if let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
                negative = sign == UInt8(ascii: "-")
                digits = digits.dropFirst()
            }
            guard let first = digits.first, let last = digits.last, first != UInt8(ascii: "_"), last != UInt8(ascii: "_"),
                  digits.count <= 18 else { return nil }
            var v = 0, previousUnderscore = false
            for d in digits {
                if d == UInt8(ascii: "_") {
                    guard !previousUnderscore else { return nil }
                    previousUnderscore = true
                    continue
                }
                guard d >= 0x30, d <= 0x39 else { return nil }
                previousUnderscore = false
                v = v * 10 + Int(d - 0x30)
            }
            values.append(negative ? -v : v)
        }
        return values
    }
}
