/// A JSON value. Objects keep their key order (lookups are linear; JSON in model folders has
/// either small objects that are looked up, or big ones such as a vocabulary that are iterated).
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(key: String, value: JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The value of `key` in an object (the last one if repeated), nil otherwise.
    public subscript(key: String) -> JSON? {
        guard case let .object(pairs) = self else { return nil }
        return pairs.last(where: { $0.key == key })?.value
    }

    public var string: String? { if case let .string(s) = self { return s }; return nil }
    public var double: Double? { if case let .number(n) = self { return n }; return nil }
    public var bool: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var array: [JSON]? { if case let .array(a) = self { return a }; return nil }
    public var object: [(key: String, value: JSON)]? { if case let .object(o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// An integer value, nil unless the number is integral and fits.
    public var int: Int? {
        guard case let .number(n) = self, n.rounded() == n, abs(n) < 9.0e15 else { return nil }
        return Int(n)
    }

    /// Parses UTF-8 JSON text. Nesting is limited so hostile input cannot exhaust the stack.
    public static func parse(_ bytes: UnsafeRawBufferPointer, what: String = "JSON", maxDepth: Int = 256) throws -> JSON {
        var parser = JSONParser(bytes: bytes, what: what, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.pos == bytes.count else { throw parser.error("unexpected trailing characters") }
        return value
    }

    public static func parse(_ text: String, what: String = "JSON") throws -> JSON {
        var copy = text
        return try copy.withUTF8 { try parse(UnsafeRawBufferPointer($0), what: what) }
    }

    /// The largest JSON file read (tokenizer.json of Qwen models is about 7-11 MB). Parsed values take up to ~24
    /// bytes per input byte, so the cap also bounds what a hostile file can make us allocate.
    public static let maxFileBytes = 64 << 20

    public static func parseFile(_ path: String) throws -> JSON {
        let file = try FileBytes(path: path, map: true)
        guard file.count <= maxFileBytes else { throw QwenError.format("'\(path)' is larger than \(maxFileBytes) bytes") }
        return try parse(file.buffer, what: path)
    }

    /// Serializes compactly (object key order preserved).
    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n):
            if n.rounded() == n, abs(n) < 9.0e15 { out += String(Int(n)) } else { out += "\(n)" }
        case let .string(s): JSON.writeString(s, to: &out)
        case let .array(items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out)
            }
            out += "]"
        case let .object(pairs):
            out += "{"
            for (i, p) in pairs.enumerated() {
                if i > 0 { out += "," }
                JSON.writeString(p.key, to: &out)
                out += ":"
                p.value.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let what: String
    let maxDepth: Int
    var pos = 0

    init(bytes: UnsafeRawBufferPointer, what: String, maxDepth: Int) {
        self.bytes = bytes
        self.what = what
        self.maxDepth = maxDepth
    }

    func error(_ message: String) -> QwenError {
        QwenError.format("\(what): invalid JSON at byte \(pos): \(message)")
    }

    @inline(__always) var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            let c = bytes[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { break }
        }
    }

    mutating func expect(_ literal: StaticString) throws {
        let n = literal.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw error("truncated literal") }
        let lit = UnsafeRawBufferPointer(start: literal.utf8Start, count: n)
        for i in 0 ..< n where bytes[pos + i] != lit[i] { throw error("invalid literal") }
        pos += n
    }

    mutating func parseValue(depth: Int) throws -> JSON {
        guard depth < maxDepth else { throw error("nesting deeper than \(maxDepth)") }
        guard let c = current else { throw error("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"):
            pos += 1
            var pairs: [(key: String, value: JSON)] = []
            skipWhitespace()
            if current == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a key string") }
                let key = try parseString()
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
                pos += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                pairs.append((key, value))
                skipWhitespace()
                if current == UInt8(ascii: ",") { pos += 1; continue }
                if current == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSON] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                if current == UInt8(ascii: ",") { pos += 1; continue }
                if current == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expect("true"); return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false"); return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null"); return .null
        case UInt8(ascii: "N"):  // Python's json.dump writes NaN / Infinity; accept them
            try expect("NaN"); return .number(.nan)
        case UInt8(ascii: "I"):
            try expect("Infinity"); return .number(.infinity)
        default:
            return .number(try parseNumber())
        }
    }

    mutating func parseNumber() throws -> Double {
        let start = pos
        var negative = false
        if current == UInt8(ascii: "-") {
            negative = true
            pos += 1
            if current == UInt8(ascii: "I") { try expect("Infinity"); return -.infinity }
        }
        var integer: Int64 = 0
        var digits = 0
        while let c = current, c >= 0x30, c <= 0x39 {
            if digits < 18 { integer = integer * 10 + Int64(c - 0x30) }
            digits += 1
            pos += 1
        }
        guard digits > 0 else { throw error("invalid number") }
        var isInteger = digits <= 18
        if current == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            var fraction = 0
            while let c = current, c >= 0x30, c <= 0x39 { pos += 1; fraction += 1 }
            guard fraction > 0 else { throw error("invalid number") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { pos += 1 }
            var exponent = 0
            while let c = current, c >= 0x30, c <= 0x39 { pos += 1; exponent += 1 }
            guard exponent > 0 else { throw error("invalid number") }
        }
        if isInteger { return Double(negative ? -integer : integer) }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< pos]), as: UTF8.self)
        guard let value = Double(text) else { throw error("invalid number '\(text)'") }
        return value
    }

    mutating func parseHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0 ..< 4 {
            let c = bytes[pos]
            pos += 1
            let d: UInt32
            switch c {
            case 0x30 ... 0x39: d = UInt32(c - 0x30)
            case 0x41 ... 0x46: d = UInt32(c - 0x41 + 10)
            case 0x61 ... 0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
        }
        return v
    }

    mutating func parseString() throws -> String {
        pos += 1  // opening quote
        let start = pos
        // fast path: no escapes
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in string") }
            pos += 1
        }
        var out: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start ..< min(pos, bytes.count)]))
        while true {
            guard let c = current else { throw error("unterminated string") }
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard let e = current else { throw error("unterminated escape") }
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if scalar >= 0xD800, scalar < 0xDC00 {
                    // a high surrogate must pair with a following \uDC00-\uDFFF escape
                    if pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                        let save = pos
                        pos += 2
                        let low = try parseHex4()
                        if low >= 0xDC00, low < 0xE000 {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            pos = save
                            scalar = 0xFFFD
                        }
                    } else {
                        scalar = 0xFFFD
                    }
                } else if scalar >= 0xDC00, scalar < 0xE000 {
                    scalar = 0xFFFD
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                UTF8.encode(u) { out.append($0) }
            default: throw error("invalid escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
