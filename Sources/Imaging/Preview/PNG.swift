// The one file that calls zlib: PNG encoding (deflate, CRC-32) and decoding (inflate) for the
// report's image previews.

import CZlib
import Foundation
import SelfCalSupport

/// An 8-bit image in memory, rows top to bottom, channels interleaved (1 grey, 3 RGB, 4 RGBA).
public struct RasterImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && [1, 3, 4].contains(channels), "RasterImage: bad shape")
        precondition(pixels.count == width * height * channels, "RasterImage: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The pixel at (x, y), y from the top, as its channel values.
    public subscript(x: Int, y: Int) -> ArraySlice<UInt8> {
        let i = (y * width + x) * channels
        return pixels[i..<i + channels]
    }
}

/// PNG files (RFC 2083): 8-bit greyscale, RGB or RGBA, not interlaced.
public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Encodes `image` as PNG: each row filtered with the filter that minimises the sum of
    /// absolute differences (the libpng heuristic), then deflated (`compress2`, level 6).
    ///
    /// Throws `.badInput` when zlib fails (out of memory).
    public static func encode(_ image: RasterImage) throws -> Data {
        let bpp = image.channels
        let stride = image.width * bpp
        var filtered = [UInt8](repeating: 0, count: image.height * (stride + 1))
        var candidate = [UInt8](repeating: 0, count: stride)
        image.pixels.withUnsafeBufferPointer { px in
            let zero = [UInt8](repeating: 0, count: stride)
            zero.withUnsafeBufferPointer { zeroRow in
                for y in 0..<image.height {
                    let row = UnsafeBufferPointer(rebasing: px[(y * stride)..<((y + 1) * stride)])
                    let up = y > 0 ? UnsafeBufferPointer(rebasing: px[((y - 1) * stride)..<(y * stride)]) : zeroRow
                    var best = (filter: 0, cost: Int.max)
                    for filter in 0...4 {
                        applyFilter(filter, row: row, up: up, bpp: bpp, into: &candidate)
                        var cost = 0
                        for b in candidate { cost += b < 128 ? Int(b) : 256 - Int(b) }
                        if cost < best.cost { best = (filter, cost) }
                    }
                    applyFilter(best.filter, row: row, up: up, bpp: bpp, into: &candidate)
                    let o = y * (stride + 1)
                    filtered[o] = UInt8(best.filter)
                    for i in 0..<stride { filtered[o + 1 + i] = candidate[i] }
                }
            }
        }
        var bound = compressBound(uLong(filtered.count))
        var deflated = [UInt8](repeating: 0, count: Int(bound))
        let status = compress2(&deflated, &bound, filtered, uLong(filtered.count), 6)
        guard status == Z_OK else { throw PipelineError(.badInput, "zlib compress2 failed (status \(status))", context: "PNG encoder") }
        deflated.removeSubrange(Int(bound)...)

        var out = Data(signature)
        var header = [UInt8]()
        header.appendBigEndian(UInt32(image.width))
        header.appendBigEndian(UInt32(image.height))
        header += [8, colourType(channels: image.channels), 0, 0, 0]
        appendChunk("IHDR", header, to: &out)
        appendChunk("IDAT", deflated, to: &out)
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// Decodes a PNG this encoder can write (8-bit grey, RGB or RGBA, not interlaced), checking
    /// every chunk's CRC.
    ///
    /// Throws `.badInput` naming what is wrong: not a PNG, a bad CRC, an unsupported format,
    /// corrupt compressed data or a bad filter byte.
    public static func decode(_ data: Data) throws -> RasterImage {
        let bytes = [UInt8](data)
        func fail(_ why: String) -> PipelineError { PipelineError(.badInput, why, context: "PNG decoder") }
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else { throw fail("not a PNG (bad signature)") }
        var pos = 8
        var width = 0, height = 0, channels = 0
        var idat = [UInt8]()
        var sawEnd = false
        while pos + 12 <= bytes.count {
            let length = Int(bytes.readBigEndian(at: pos))
            guard pos + 12 + length <= bytes.count else { throw fail("truncated chunk at byte \(pos)") }
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            let body = Array(bytes[(pos + 8)..<(pos + 8 + length)])
            let crc = bytes.readBigEndian(at: pos + 8 + length)
            guard crc == chunkCRC(type, body) else { throw fail("bad CRC in \(type) chunk") }
            switch type {
            case "IHDR":
                guard length == 13 else { throw fail("IHDR has \(length) bytes") }
                width = Int(body.readBigEndian(at: 0))
                height = Int(body.readBigEndian(at: 4))
                guard body[8] == 8, body[10] == 0, body[11] == 0, body[12] == 0 else {
                    throw fail("unsupported PNG (bit depth \(body[8]), interlace \(body[12]))")
                }
                switch body[9] {
                case 0: channels = 1
                case 2: channels = 3
                case 6: channels = 4
                default: throw fail("unsupported colour type \(body[9])")
                }
            case "IDAT": idat += body
            case "IEND": sawEnd = true
            default: break
            }
            pos += 12 + length
            if sawEnd { break }
        }
        guard width > 0, height > 0, channels > 0 else { throw fail("no IHDR chunk") }
        guard sawEnd else { throw fail("no IEND chunk") }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: height * (stride + 1))
        var rawLength = uLongf(raw.count)
        let status = uncompress(&raw, &rawLength, idat, uLong(idat.count))
        guard status == Z_OK, Int(rawLength) == raw.count else {
            throw fail("corrupt image data (zlib status \(status), \(rawLength) of \(raw.count) bytes)")
        }
        var pixels = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            guard filter <= 4 else { throw fail("bad filter byte \(filter) on row \(y)") }
            let src = y * (stride + 1) + 1, dst = y * stride
            for i in 0..<stride {
                let a = i >= channels ? Int(pixels[dst + i - channels]) : 0
                let b = y > 0 ? Int(pixels[dst - stride + i]) : 0
                let c = (y > 0 && i >= channels) ? Int(pixels[dst - stride + i - channels]) : 0
                pixels[dst + i] = UInt8(truncatingIfNeeded: Int(raw[src + i]) + predictor(Int(filter), a, b, c))
            }
        }
        return RasterImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// `data:image/png;base64,…` for embedding in HTML.
    public static func dataURI(_ png: Data) -> String {
        "data:image/png;base64," + png.base64EncodedString()
    }

    // MARK: Internals

    static func colourType(channels: Int) -> UInt8 {
        switch channels {
        case 1: return 0
        case 3: return 2
        default: return 6
        }
    }

    /// What PNG filter type `filter` predicts a byte from: a (left), b (up), c (up-left).
    @inline(__always) static func predictor(_ filter: Int, _ a: Int, _ b: Int, _ c: Int) -> Int {
        switch filter {
        case 0: return 0
        case 1: return a
        case 2: return b
        case 3: return (a + b) / 2
        default: return paeth(a, b, c)
        }
    }

    static func paeth(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    static func applyFilter(_ filter: Int, row: UnsafeBufferPointer<UInt8>, up: UnsafeBufferPointer<UInt8>, bpp: Int,
                            into out: inout [UInt8]) {
        for i in 0..<row.count {
            let x = Int(row[i])
            let a = i >= bpp ? Int(row[i - bpp]) : 0
            let b = Int(up[i])
            let c = i >= bpp ? Int(up[i - bpp]) : 0
            out[i] = UInt8(truncatingIfNeeded: x - predictor(filter, a, b, c))
        }
    }

    /// CRC-32 of the chunk type and body (`crc32`).
    static func chunkCRC(_ type: String, _ body: [UInt8]) -> UInt32 {
        let typeBytes = Array(type.utf8)
        var crc = crc32(0, typeBytes, uInt(typeBytes.count))
        crc = body.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        return UInt32(truncatingIfNeeded: crc)
    }

    static func appendChunk(_ type: String, _ body: [UInt8], to out: inout Data) {
        var chunk = [UInt8]()
        chunk.appendBigEndian(UInt32(body.count))
        chunk += Array(type.utf8)
        chunk += body
        chunk.appendBigEndian(chunkCRC(type, body))
        out.append(contentsOf: chunk)
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ v: UInt32) {
        append(UInt8(v >> 24)); append(UInt8((v >> 16) & 0xFF)); append(UInt8((v >> 8) & 0xFF)); append(UInt8(v & 0xFF))
    }

    func readBigEndian(at i: Int) -> UInt32 {
        UInt32(self[i]) << 24 | UInt32(self[i + 1]) << 16 | UInt32(self[i + 2]) << 8 | UInt32(self[i + 3])
    }
}
