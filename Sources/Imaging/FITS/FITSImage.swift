import SelfCalSupport
/// One FITS header card: keyword, typed value and comment.
///
/// Structural keywords (SIMPLE, BITPIX, NAXISn, EXTEND, BSCALE, BZERO, BLANK, …) are not kept in a
/// `FITSImage`'s header: they describe how the pixels are stored, and `write(path:)` writes its own.
public struct FITSCard: Sendable, Hashable {
    public enum Value: Sendable, Hashable {
        /// A quoted string, without the quotes and trailing blanks; long strings read from
        /// CONTINUE records are joined.
        case string(String)
        case integer(Int)
        case real(Double)
        case logical(Bool)
        case complex(Double, Double)
        /// `KEY =` with an empty value field.
        case undefined
        /// No value indicator (COMMENT, HISTORY, blank keyword): the text is in `comment`.
        case commentary
    }

    /// The keyword, upper case (for HIERARCH cards, the part after `HIERARCH `).
    public var key: String
    public var value: Value
    /// The comment after `/`, or the whole text of a commentary card.
    public var comment: String

    public init(key: String, value: Value, comment: String = "") {
        self.key = key.uppercased()
        self.value = value
        self.comment = comment
    }

    /// The value as text: a string's content, a number as written, `T`/`F`; nil for commentary
    /// and undefined cards.
    public var text: String? {
        switch value {
        case .string(let string): return string
        case .integer(let integer): return String(integer)
        case .real(let real): return formatFITSReal(real)
        case .logical(let flag): return flag ? "T" : "F"
        case .complex(let re, let im): return "(\(formatFITSReal(re)), \(formatFITSReal(im)))"
        case .undefined, .commentary: return nil
        }
    }

    /// The value as a number: reals and integers, and strings that hold a number; nil otherwise.
    public var number: Double? {
        switch value {
        case .real(let real): return real
        case .integer(let integer): return Double(integer)
        case .string(let string): return Double(string.trimmingSpaces())
        default: return nil
        }
    }
}

/// A 2-D FITS image in memory: the first plane of the file's image, as 32-bit floats, with the
/// header cards that describe it (WCS, beam, units, history).
///
/// Pixels are row-major with x fastest: `pixels[y * width + x]`, 0-based, where x runs along
/// FITS axis 1 (RA) and y along axis 2 (Dec). Blank and NaN pixels read as NaN.
public struct FITSImage: Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [Float]
    /// Header cards in file order, without the structural keywords (see `FITSCard`).
    public var header: [FITSCard]
    /// The file the image was read from, if any: the context of errors about it.
    public var sourcePath: String?

    /// An image from its pixels; `pixels.count` must be `width * height`.
    public init(width: Int, height: Int, pixels: [Float], header: [FITSCard] = []) {
        precondition(width > 0 && height > 0, "FITSImage needs a positive size")
        precondition(pixels.count == width * height,
                     "FITSImage: \(pixels.count) pixels for \(width)×\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
        self.header = header.filter { !isStructural($0) }
    }

    /// An image of zeros.
    public init(width: Int, height: Int, header: [FITSCard] = []) {
        self.init(width: width, height: height,
                  pixels: [Float](repeating: 0, count: width * height), header: header)
    }

    /// The pixel at 0-based (x, y).
    public subscript(x x: Int, y y: Int) -> Float {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside")
            return pixels[y * width + x]
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside")
            pixels[y * width + x] = newValue
        }
    }

    // MARK: header access

    /// The first card with this keyword (case-insensitive), if any.
    public func card(forKey key: String) -> FITSCard? {
        let key = key.uppercased()
        return header.first { $0.key == key }
    }

    /// The value of `key` as text (see `FITSCard.text`); nil when absent or valueless.
    public func value(forKey key: String) -> String? {
        card(forKey: key)?.text
    }

    /// The value of `key` as a number (see `FITSCard.number`); nil when absent or not a number.
    public func doubleValue(forKey key: String) -> Double? {
        card(forKey: key)?.number
    }

    /// Sets `key` to `value`: replaces the first card with that keyword, or appends one.
    /// A nil comment keeps the existing card's comment.
    public mutating func setValue(_ value: FITSCard.Value, forKey key: String,
                                  comment: String? = nil)
    {
        let key = key.uppercased()
        if let index = header.firstIndex(where: { $0.key == key }) {
            header[index].value = value
            if let comment { header[index].comment = comment }
        } else {
            header.append(FITSCard(key: key, value: value, comment: comment ?? ""))
        }
    }

    /// Removes every card with this keyword.
    public mutating func removeValue(forKey key: String) {
        let key = key.uppercased()
        header.removeAll { $0.key == key }
    }

    /// The world coordinate system the header describes, built by wcslib.
    ///
    /// Throws `.badInput` when the header has no usable celestial WCS.
    public func wcs() throws(PipelineError) -> WCS {
        try WCS(header: header, axisCount: max(2, highestAxisNumber(in: header)),
                context: sourcePath ?? value(forKey: "OBJECT").map { "image of \($0)" }
                    ?? "image header")
    }

    // MARK: construction

    /// A blank sky image with the header WSClean writes: SIN projection centred on
    /// (`raDeg`, `decDeg`), `CRPIX1 = width/2 + 1`, `CRPIX2 = height/2 + 1` (integer division,
    /// 1-based, so the phase centre is 0-based pixel (width/2, height/2)), `CDELT1 = -cell`,
    /// `CDELT2 = +cell`, then a FREQ axis and a STOKES axis (I) of length one.
    ///
    /// - Parameters:
    ///   - raDeg: CRVAL1, written as given (WSClean writes the MS phase centre, in −180…180).
    ///   - bandwidthHz: CDELT3; WSClean writes the imaged bandwidth. Must not be 0 (wcslib
    ///     rejects a singular axis).
    public static func sky(width: Int, height: Int, cellArcsec: Double, raDeg: Double,
                           decDeg: Double, frequencyHz: Double,
                           bandwidthHz: Double = 1) -> FITSImage
    {
        let cell = cellArcsec / 3600
        let header: [FITSCard] = [
            FITSCard(key: "BUNIT", value: .string("JY/BEAM"), comment: "Units are in Jansky per beam"),
            FITSCard(key: "EQUINOX", value: .real(2000), comment: "J2000"),
            FITSCard(key: "RADESYS", value: .string("FK5")),
            FITSCard(key: "BTYPE", value: .string("Intensity")),
            FITSCard(key: "CTYPE1", value: .string("RA---SIN"), comment: "Right ascension angle cosine"),
            FITSCard(key: "CRPIX1", value: .real(Double(width / 2 + 1))),
            FITSCard(key: "CRVAL1", value: .real(raDeg)),
            FITSCard(key: "CDELT1", value: .real(-cell)),
            FITSCard(key: "CUNIT1", value: .string("deg")),
            FITSCard(key: "CTYPE2", value: .string("DEC--SIN"), comment: "Declination angle cosine"),
            FITSCard(key: "CRPIX2", value: .real(Double(height / 2 + 1))),
            FITSCard(key: "CRVAL2", value: .real(decDeg)),
            FITSCard(key: "CDELT2", value: .real(cell)),
            FITSCard(key: "CUNIT2", value: .string("deg")),
            FITSCard(key: "CTYPE3", value: .string("FREQ"), comment: "Central frequency"),
            FITSCard(key: "CRPIX3", value: .real(1)),
            FITSCard(key: "CRVAL3", value: .real(frequencyHz)),
            FITSCard(key: "CDELT3", value: .real(bandwidthHz)),
            FITSCard(key: "CUNIT3", value: .string("Hz")),
            FITSCard(key: "CTYPE4", value: .string("STOKES")),
            FITSCard(key: "CRPIX4", value: .real(1)),
            FITSCard(key: "CRVAL4", value: .real(1)),
            FITSCard(key: "CDELT4", value: .real(1)),
            FITSCard(key: "CUNIT4", value: .string("")),
        ]
        return FITSImage(width: width, height: height, header: header)
    }

    // MARK: I/O

    /// Reads the first image HDU with at least two axes (the primary array, normally) and its
    /// header (`ffdkopn`, `ffmahd`, `ffgidm`, `ffgiszll`, `ffgpxvll`). Only the first plane of a
    /// cube is read (pixel 1 on axes 3, 4, …); scaled integer images are read as scaled floats.
    ///
    /// Throws `.badInput` naming the file when it is missing, not FITS, holds no 2-D image, or
    /// cannot be read.
    public static func read(path: String) throws(PipelineError) -> FITSImage {
        let file = try FITSFile.open(path: path)
        let axes = try file.moveToFirstImage()
        let header = parseHeader(records: try file.headerRecords())
        let pixels = try file.readFirstPlane(width: axes[0], height: axes[1],
                                             axisCount: axes.count)
        try file.close()
        var image = FITSImage(width: axes[0], height: axes[1], pixels: pixels, header: header)
        image.sourcePath = path
        return image
    }

    /// Writes the image as a 4-D 32-bit float image [width, height, 1, 1], the shape WSClean
    /// writes, followed by the header cards (`ffdkinit`, `ffcrimll`, `ffprec`, `ffppxll`).
    /// Overwrites `path`: the file is written beside it and renamed into place.
    ///
    /// Throws `.badInput` when the file cannot be written or a card cannot be formatted.
    public func write(path: String) throws(PipelineError) {
        let records = try headerRecords()
        try writeFITSAtomically(path: path) { file throws(PipelineError) in
            try file.createFloatImage(axes: [width, height, 1, 1])
            for record in records { try file.appendRecord(record) }
            try file.writePixels(pixels, axisCount: 4)
        }
    }

    /// The header as 80-character records, without structural keywords or END.
    func headerRecords() throws(PipelineError) -> [String] {
        var records: [String] = []
        for card in header where !isStructural(card) {
            records += try card.records()
        }
        return records
    }
}

/// Keywords that describe the HDU's storage rather than its content; cfitsio writes its own.
func isStructural(_ card: FITSCard) -> Bool {
    switch card.key {
    case "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "BSCALE",
         "BZERO", "BLANK", "CHECKSUM", "DATASUM", "END":
        return true
    case "COMMENT":
        // The two lines cfitsio adds to every primary header it creates.
        return card.comment.contains("FITS (Flexible Image Transport System) format is defined")
            || card.comment.contains("and Astrophysics', volume 376, page 359")
    default:
        guard card.key.hasPrefix("NAXIS") else { return false }
        return card.key.dropFirst(5).allSatisfy(\.isNumber)
    }
}

/// The highest axis number among CTYPEn, CRPIXn, CRVALn, CDELTn, CUNITn keywords.
private func highestAxisNumber(in header: [FITSCard]) -> Int {
    var highest = 0
    for card in header {
        for prefix in ["CTYPE", "CRPIX", "CRVAL", "CDELT", "CUNIT"] where card.key.hasPrefix(prefix) {
            if let number = Int(card.key.dropFirst(prefix.count)) { highest = max(highest, number) }
        }
    }
    return highest
}
