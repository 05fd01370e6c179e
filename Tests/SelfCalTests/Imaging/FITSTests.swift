import Foundation
import Testing

@testable import Imaging
import SelfCalSupport

// FITS images, WCS and tables: round trips through cfitsio, hand-made files read back, and
// pixel→world cross-checked against casacore (python-casacore) and a real WSClean image.

@Suite("FITS images")
struct FITSImageTests {
    @Test("pixels and header survive write and read")
    func imageRoundTrip() throws {
        try withTemporaryDirectory { directory in
            var image = FITSImage.sky(width: 7, height: 5, cellArcsec: 4, raDeg: -138.68,
                                      decDeg: 9.97, frequencyHz: 1.4e9, bandwidthHz: 2e6)
            for index in image.pixels.indices { image.pixels[index] = Float(index) * 0.25 - 3 }
            image[x: 2, y: 3] = .nan
            image[x: 6, y: 0] = -.infinity
            image.setValue(.string("it's a 'test'"), forKey: "OBJECT", comment: "quoted")
            image.setValue(.string(String(repeating: "long string ", count: 12) + "end"),
                           forKey: "LONGSTR")
            image.setValue(.logical(true), forKey: "FLAG")
            image.setValue(.integer(-42), forKey: "COUNT")
            image.setValue(.real(1.0e-25), forKey: "TINY")
            image.setValue(.undefined, forKey: "NOTHING", comment: "no value")
            image.setValue(.real(0.5), forKey: "ESO DET GAIN", comment: "HIERARCH card")
            image.header.append(FITSCard(key: "HISTORY", value: .commentary,
                                         comment: "made by FITSTests"))

            let path = directory + "/round.fits"
            try image.write(path: path)
            let read = try FITSImage.read(path: path)

            #expect(read.width == 7)
            #expect(read.height == 5)
            #expect(read.pixels.count == image.pixels.count)
            for index in image.pixels.indices {
                let (a, b) = (image.pixels[index], read.pixels[index])
                #expect(a == b || (a.isNaN && b.isNaN), "pixel \(index): \(a) vs \(b)")
            }
            #expect(read[x: 2, y: 3].isNaN)
            #expect(read[x: 6, y: 0] == -.infinity)
            #expect(read.header == image.header)
            #expect(read.value(forKey: "object") == "it's a 'test'")
            #expect(read.value(forKey: "LONGSTR") == String(repeating: "long string ", count: 12) + "end")
            #expect(read.doubleValue(forKey: "CDELT1") == -4.0 / 3600)
            #expect(read.doubleValue(forKey: "COUNT") == -42)
            #expect(read.value(forKey: "FLAG") == "T")
            #expect(read.value(forKey: "NOTHING") == nil)
            #expect(read.doubleValue(forKey: "ESO DET GAIN") == 0.5)
            #expect(read.value(forKey: "ABSENT") == nil)
        }
    }

    @Test("written file is 4-D float [w, h, 1, 1] with WSClean's axes")
    func writtenLayout() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/layout.fits"
            try FITSImage.sky(width: 6, height: 4, cellArcsec: 1, raDeg: 10, decDeg: -30,
                              frequencyHz: 1e8).write(path: path)
            let header = try rawHeader(path)
            for expected in [
                "SIMPLE  =                    T", "BITPIX  =                  -32",
                "NAXIS   =                    4", "NAXIS1  =                    6",
                "NAXIS2  =                    4", "NAXIS3  =                    1",
                "NAXIS4  =                    1", "CTYPE1  = 'RA---SIN'",
                "CTYPE2  = 'DEC--SIN'", "CTYPE3  = 'FREQ    '", "CTYPE4  = 'STOKES  '",
                "BUNIT   = 'JY/BEAM '", "RADESYS = 'FK5     '",
            ] {
                #expect(header.contains { $0.hasPrefix(expected) }, "missing \(expected)")
            }
            // cfitsio's own COMMENT lines are not duplicated by a read-write cycle.
            try FITSImage.read(path: path).write(path: path)
            #expect(try rawHeader(path).filter { $0.contains("Flexible Image Transport") }.count
                        == 1)
        }
    }

    @Test("writing overwrites the old file and leaves nothing else behind")
    func overwrite() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/image.fits"
            try FITSImage(width: 2, height: 2, pixels: [1, 2, 3, 4]).write(path: path)
            try FITSImage(width: 3, height: 1, pixels: [5, 6, 7]).write(path: path)
            let read = try FITSImage.read(path: path)
            #expect(read.width == 3 && read.height == 1)
            #expect(read.pixels == [5, 6, 7])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory)
                        == ["image.fits"])
        }
    }

    @Test("sky header puts the phase centre where WSClean does")
    func skyHeader() throws {
        let image = FITSImage.sky(width: 128, height: 64, cellArcsec: 8, raDeg: -138.681393333333,
                                  decDeg: 9.97668694444444, frequencyHz: 1413421909.706)
        #expect(image.doubleValue(forKey: "CRPIX1") == 65)
        #expect(image.doubleValue(forKey: "CRPIX2") == 33)
        #expect(image.doubleValue(forKey: "CDELT1") == -8.0 / 3600)
        #expect(image.doubleValue(forKey: "CDELT2") == 8.0 / 3600)
        #expect(image.doubleValue(forKey: "CRVAL1") == -138.681393333333)
        #expect(image.value(forKey: "CUNIT1") == "deg")
        #expect(image.value(forKey: "CTYPE3") == "FREQ")
        #expect(image.value(forKey: "CTYPE4") == "STOKES")
        #expect(image.doubleValue(forKey: "EQUINOX") == 2000)
        #expect(image.pixels.allSatisfy { $0 == 0 })
    }

    @Test("a hand-made 2-D float image reads with x fastest")
    func handMade2D() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/plain.fits"
            // 3 × 2 pixels, row-major in the file: (x, y) holds 10 y + x.
            try writeRawFITS(path: path, cards: [
                "SIMPLE  = T", "BITPIX  = -32", "NAXIS   = 2", "NAXIS1  = 3", "NAXIS2  = 2",
                "CTYPE1  = 'RA---SIN'", "CTYPE2  = 'DEC--SIN'", "CRPIX1  = 2.", "CRPIX2  = 1.",
                "CRVAL1  = 180.", "CRVAL2  = 45.", "CDELT1  = -0.01", "CDELT2  = 0.01",
            ], data: bigEndianFloats([0, 1, 2, 10, 11, .nan]))
            let image = try FITSImage.read(path: path)
            #expect(image.width == 3 && image.height == 2)
            #expect(image[x: 0, y: 0] == 0)
            #expect(image[x: 2, y: 0] == 2)
            #expect(image[x: 1, y: 1] == 11)
            #expect(image[x: 2, y: 1].isNaN)
            #expect(image.card(forKey: "NAXIS1") == nil)  // structural keys are not kept
            let world = try image.wcs().pixelToWorld(x: 1, y: 0)
            #expect(abs(world.raDeg - 180) < 1e-12 && abs(world.decDeg - 45) < 1e-12)
        }
    }

    @Test("scaled 16-bit pixels are scaled, BLANK pixels become NaN")
    func scaledIntegerImage() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/int16.fits"
            var data = Data()
            for value: Int16 in [4, -2, 7, -32768] {
                withUnsafeBytes(of: value.bigEndian) { data.append(contentsOf: $0) }
            }
            try writeRawFITS(path: path, cards: [
                "SIMPLE  = T", "BITPIX  = 16", "NAXIS   = 2", "NAXIS1  = 2", "NAXIS2  = 2",
                "BSCALE  = 0.5", "BZERO   = 1.", "BLANK   = -32768",
            ], data: data)
            let image = try FITSImage.read(path: path)
            #expect(Array(image.pixels.prefix(3)) == [3, 0, 4.5])
            #expect(image.pixels[3].isNaN)
            #expect(image.card(forKey: "BSCALE") == nil)
        }
    }

    @Test("a file that is not FITS, or is missing, throws badInput naming it")
    func notFITS() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/notes.fits"
            try "this is not a FITS file\n".write(toFile: path, atomically: true, encoding: .utf8)
            for candidate in [path, directory + "/missing.fits"] {
                let error = #expect(throws: PipelineError.self) {
                    try FITSImage.read(path: candidate)
                }
                #expect(error?.code == .badInput)
                #expect(error?.context == candidate)
                let tableError = #expect(throws: PipelineError.self) {
                    try FITSTable.read(path: candidate)
                }
                #expect(tableError?.code == .badInput)
                #expect(tableError?.context == candidate)
                let wcsError = #expect(throws: PipelineError.self) { try WCS(path: candidate) }
                #expect(wcsError?.code == .badInput)
            }
        }
    }

    @Test("writing into a missing directory throws badInput")
    func writeFails() {
        let error = #expect(throws: PipelineError.self) {
            try FITSImage(width: 1, height: 1).write(path: "/nonexistent-dir/x.fits")
        }
        #expect(error?.code == .badInput)
        #expect(error?.context?.hasPrefix("/nonexistent-dir/x.fits") == true)
    }
}

@Suite("WCS")
struct WCSTests {
    let image = FITSImage.sky(width: 100, height: 80, cellArcsec: 6, raDeg: -138.681393333333,
                              decDeg: 9.97668694444444, frequencyHz: 1.4e9, bandwidthHz: 1e6)

    @Test("the reference pixel maps to CRVAL")
    func referencePixel() throws {
        let wcs = try image.wcs()
        #expect(wcs.referencePixel == (x: 50, y: 40))
        let world = try wcs.pixelToWorld(x: 50, y: 40)
        #expect(abs(world.raDeg - (360 - 138.681393333333)) < 1e-10)
        #expect(abs(world.decDeg - 9.97668694444444) < 1e-10)
        let pixel = try wcs.worldToPixel(raDeg: -138.681393333333, decDeg: 9.97668694444444)
        #expect(abs(pixel.x - 50) < 1e-9 && abs(pixel.y - 40) < 1e-9)
    }

    @Test("pixel → world → pixel returns the pixel")
    func roundTrip() throws {
        let wcs = try image.wcs()
        let pixels = [(0.0, 0.0), (99.0, 79.0), (12.5, 70.25), (-20.0, 130.0), (50.0, 3.0)]
            .map { (x: $0.0, y: $0.1) }
        let worlds = try wcs.pixelToWorld(pixels)
        let back = try wcs.worldToPixel(worlds)
        for (pixel, returned) in zip(pixels, back) {
            #expect(abs(pixel.x - returned.x) < 1e-7 && abs(pixel.y - returned.y) < 1e-7,
                    "\(pixel) came back as \(returned)")
        }
        for (pixel, world) in zip(pixels, worlds) {
            let single = try wcs.pixelToWorld(x: pixel.x, y: pixel.y)
            #expect(single == world)
            #expect(world.raDeg >= 0 && world.raDeg < 360)
        }
    }

    @Test("RA grows to the left (east), Dec grows upwards, one cell per pixel")
    func orientation() throws {
        let wcs = try image.wcs()
        let centre = try wcs.pixelToWorld(x: 50, y: 40)
        let right = try wcs.pixelToWorld(x: 51, y: 40)
        let up = try wcs.pixelToWorld(x: 50, y: 41)
        let cosDec = cos(centre.decDeg * .pi / 180)
        #expect(abs((right.raDeg - centre.raDeg) * cosDec + 6.0 / 3600) < 1e-9)
        #expect(abs(up.decDeg - centre.decDeg - 6.0 / 3600) < 1e-9)
    }

    @Test("a WCS read from the file equals one built from the header in memory")
    func fromFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/wcs.fits"
            try image.write(path: path)
            let fromFile = try WCS(path: path)
            let inMemory = try image.wcs()
            #expect(fromFile.axisCount == 4)
            for pixel in [(x: 3.0, y: 77.0), (x: 98.0, y: 1.5)] {
                let a = try fromFile.pixelToWorld(x: pixel.x, y: pixel.y)
                let b = try inMemory.pixelToWorld(x: pixel.x, y: pixel.y)
                #expect(abs(a.raDeg - b.raDeg) < 1e-12 && abs(a.decDeg - b.decDeg) < 1e-12)
            }
        }
    }

    @Test("positions off the projection and headers without sky axes are errors")
    func errors() throws {
        let wcs = try image.wcs()
        // The antipode of the phase centre cannot be projected by SIN.
        let far = #expect(throws: PipelineError.self) {
            try wcs.worldToPixel(raDeg: 41.3, decDeg: -9.97)
        }
        #expect(far?.code == .badInput)
        // A pixel beyond the SIN horizon has no world coordinates.
        let beyond = #expect(throws: PipelineError.self) {
            try wcs.pixelToWorld(x: 1e6, y: 0)
        }
        #expect(beyond?.code == .badInput)
        #expect(try wcs.worldToPixel([(raDeg: 41.3, decDeg: -9.97)])[0].x.isNaN)

        let bare = #expect(throws: PipelineError.self) { try FITSImage(width: 4, height: 4).wcs() }
        #expect(bare?.code == .badInput)

        try withTemporaryDirectory { directory in
            let path = directory + "/bare.fits"
            try FITSImage(width: 4, height: 4).write(path: path)
            let fromFile = #expect(throws: PipelineError.self) {
                try FITSImage.read(path: path).wcs()
            }
            #expect(fromFile?.context == path)
        }
    }

    @Test("pixel → world agrees with casacore", .timeLimit(.minutes(1)))
    func casacoreAgrees() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/casacore.fits"
            try image.write(path: path)
            try expectCasacoreAgrees(path: path, wcs: try image.wcs(),
                                     pixels: [(0, 0), (50, 40), (99, 0), (7, 79), (99, 79),
                                              (33, 12)])
        }
    }
}

@Suite("WSClean image")
struct WSCleanImageTests {
    static let fixture = TestSupport.fixtures.appendingPathComponent("wsclean-cal1445-32px-image.fits").path

    @Test("a real WSClean image reads with its phase centre at pixel (size/2, size/2)")
    func realImage() throws {
        let image = try FITSImage.read(path: Self.fixture)
        #expect(image.width == 32 && image.height == 32)
        #expect(image.pixels.allSatisfy { $0.isFinite })
        #expect(image.value(forKey: "ORIGIN") == "WSClean")
        #expect(image.value(forKey: "CTYPE1") == "RA---SIN")
        #expect(image.value(forKey: "CTYPE3") == "FREQ")
        #expect(image.value(forKey: "CTYPE4") == "STOKES")
        #expect(image.doubleValue(forKey: "CRPIX1") == 17)
        #expect(image.doubleValue(forKey: "CRVAL1") == -138.681393333333)
        // Same convention as FITSImage.sky:
        let sky = FITSImage.sky(width: 32, height: 32, cellArcsec: 30, raDeg: -138.681393333333,
                                decDeg: 9.97668694444444, frequencyHz: 1413421909.706)
        for key in ["CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2", "CRVAL3"] {
            let ours = try #require(sky.doubleValue(forKey: key))
            let wsclean = try #require(image.doubleValue(forKey: key))
            // WSClean writes 15 significant digits.
            #expect(abs(ours - wsclean) <= 1e-14 * abs(wsclean), "\(key): \(ours) vs \(wsclean)")
        }

        let wcs = try WCS(path: Self.fixture)
        let centre = try wcs.pixelToWorld(x: 16, y: 16)
        // The MS phase centre: RA -2.42044692 rad, Dec 0.17412604 rad.
        #expect(abs(centre.raDeg - (360 + -2.42044692 * 180 / .pi)) < 1e-6)
        #expect(abs(centre.decDeg - 0.17412604 * 180 / .pi) < 1e-6)
    }

    @Test("WSClean image: pixel → world agrees with casacore", .timeLimit(.minutes(1)))
    func casacoreAgrees() throws {
        try expectCasacoreAgrees(path: Self.fixture, wcs: try WCS(path: Self.fixture),
                                 pixels: [(0, 0), (16, 16), (31, 0), (0, 31), (31, 31), (5, 20)])
    }

    @Test("a WSClean image survives read and write unchanged")
    func rewrite() throws {
        try withTemporaryDirectory { directory in
            let image = try FITSImage.read(path: Self.fixture)
            let path = directory + "/copy.fits"
            try image.write(path: path)
            let copy = try FITSImage.read(path: path)
            #expect(copy.pixels == image.pixels)
            #expect(copy.header == image.header)
        }
    }
}

@Suite("FITS tables")
struct FITSTableTests {
    @Test("an NVSS-layout table survives write and read")
    func roundTrip() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/catalog.fits"
            let table = try FITSTable(columns: [
                .init(name: "RA(2000)", unit: "DEGREES", values: .double([221.3186, 0, 359.999999999])),
                .init(name: "DEC(2000)", unit: "DEGREES", values: .double([9.9767, -40.5, 89.9])),
                .init(name: "PEAK INT", unit: "JY/BEAM", values: .float([2.5, 0.0025, .nan])),
                .init(name: "MAJOR AX", unit: "DEGREES", values: .float([0.0125, 0, 1e-3])),
                .init(name: "MINOR AX", unit: "DEGREES", values: .float([0.0125, 0, 5e-4])),
                .init(name: "POSANGLE", unit: "DEGREES", values: .float([0, 45.5, -90])),
                .init(name: "FIELD", values: .string(["C1448P08", "", "it's"])),
            ], extensionName: "AIPS VL")
            try table.write(path: path)
            let read = try FITSTable.read(path: path)
            #expect(read.extensionName == "AIPS VL")
            #expect(read.rowCount == 3)
            #expect(read.columnNames == table.columnNames)
            #expect(read.columns.map(\.unit) == table.columns.map(\.unit))
            #expect(try read.doubles("RA(2000)") == [221.3186, 0, 359.999999999])
            #expect(try read.doubles("dec(2000)") == [9.9767, -40.5, 89.9])
            let peak = try read.floats("PEAK INT")
            #expect(Array(peak.prefix(2)) == [2.5, 0.0025] && peak[2].isNaN)
            #expect(try read.doubles("POSANGLE") == [0, 45.5, -90])
            #expect(try read.strings("FIELD") == ["C1448P08", "", "it's"])
            if case .float = try read.column("MAJOR AX").values {} else {
                Issue.record("MAJOR AX should read back as 1E floats")
            }

            let subset = try FITSTable.read(path: path, extensionName: "aips vl",
                                            columns: ["DEC(2000)", "RA(2000)"])
            #expect(subset.columnNames == ["RA(2000)", "DEC(2000)"])
        }
    }

    @Test("the tuple form writes Double columns")
    func tupleForm() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/simple.fits"
            try FITSTable.write(path: path, columns: [
                (name: "X", unit: "m", values: [1, 2]), (name: "Y", unit: "", values: [3, 4]),
            ], extensionName: "POINTS")
            let read = try FITSTable.read(path: path)
            #expect(read.extensionName == "POINTS")
            #expect(try read.doubles("Y") == [3, 4])
            #expect(read.columns[0].unit == "m")
        }
    }

    @Test("a missing column names itself and the columns present")
    func missingColumn() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/catalog.fits"
            try FITSTable.write(path: path, columns: [
                (name: "RA(2000)", unit: "DEGREES", values: [1]),
                (name: "DEC(2000)", unit: "DEGREES", values: [2]),
            ])
            let table = try FITSTable.read(path: path)
            let error = #expect(throws: PipelineError.self) { try table.doubles("PEAK INT") }
            #expect(error?.code == .badInput)
            #expect(error?.context == path)
            #expect(error?.message.contains("'PEAK INT'") == true)
            #expect(error?.message.contains("'RA(2000)', 'DEC(2000)'") == true)
            let early = #expect(throws: PipelineError.self) {
                try FITSTable.read(path: path, columns: ["RA(2000)", "FLUX"])
            }
            #expect(early?.message.contains("'FLUX'") == true)
            let wrongType = #expect(throws: PipelineError.self) { try table.strings("RA(2000)") }
            #expect(wrongType?.code == .badInput)
        }
    }

    @Test("a FITS file without a table, or without the named one, throws badInput")
    func noTable() throws {
        try withTemporaryDirectory { directory in
            let imagePath = directory + "/image.fits"
            try FITSImage(width: 2, height: 2).write(path: imagePath)
            let error = #expect(throws: PipelineError.self) { try FITSTable.read(path: imagePath) }
            #expect(error?.code == .badInput)
            #expect(error?.context == imagePath)
            #expect(error?.message.contains("no binary or ASCII table") == true)

            let tablePath = directory + "/table.fits"
            try FITSTable.write(path: tablePath, columns: [(name: "A", unit: "", values: [1])])
            let named = #expect(throws: PipelineError.self) {
                try FITSTable.read(path: tablePath, extensionName: "OTHER")
            }
            #expect(named?.message.contains("'AIPS VL'") == true)
        }
    }

    @Test("columns of different lengths are rejected")
    func unequalColumns() {
        let error = #expect(throws: PipelineError.self) {
            try FITSTable(columns: [.init(name: "A", values: .double([1, 2])),
                                    .init(name: "B", values: .float([1]))])
        }
        #expect(error?.code == .badInput)
    }

    @Test("a large catalog reads in whole columns", .timeLimit(.minutes(1)))
    func largeTable() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/large.fits"
            let rows = 300_000
            let ra = (0..<rows).map { Double($0) * 360 / Double(rows) }
            let peak = (0..<rows).map { Float($0 % 1000) * 1e-3 }
            try FITSTable(columns: [
                .init(name: "RA(2000)", unit: "DEGREES", values: .double(ra)),
                .init(name: "DEC(2000)", unit: "DEGREES", values: .double(ra.map { $0 / 4 - 45 })),
                .init(name: "PEAK INT", unit: "JY/BEAM", values: .float(peak)),
            ]).write(path: path)
            let read = try FITSTable.read(path: path)
            #expect(read.rowCount == rows)
            #expect(try read.doubles("RA(2000)") == ra)
            #expect(try read.floats("PEAK INT") == peak)
        }
    }
}

// MARK: - helpers

/// Runs `body` with a fresh temporary directory, removed afterwards.
private func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("selfcal-fits-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try body(directory)
}

/// The header records of a FITS file's primary HDU, read as raw text.
private func rawHeader(_ path: String) throws -> [String] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    var records: [String] = []
    var offset = 0
    while offset + 80 <= data.count {
        let record = String(decoding: data[offset..<offset + 80], as: UTF8.self)
        records.append(record)
        if record.hasPrefix("END ") { break }
        offset += 80
    }
    return records
}

/// Writes a minimal FITS file by hand: the cards (padded to 80), END, then `data`, each part
/// padded to 2880 bytes. Independent of cfitsio, to check what our reader makes of it.
private func writeRawFITS(path: String, cards: [String], data: Data) throws {
    func pad(_ text: String, to width: Int) -> String {
        text + String(repeating: " ", count: width - text.utf8.count)
    }
    var header = cards.map { card -> String in
        // Right-justify values in columns 11-30 as the fixed format asks.
        if let equals = card.firstIndex(of: "="), card.distance(from: card.startIndex, to: equals) == 8 {
            let value = card[card.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            let key = String(card[..<equals])
            return pad(value.hasPrefix("'") ? key + "= " + value
                       : key + "= " + String(repeating: " ", count: max(0, 20 - value.count)) + value,
                       to: 80)
        }
        return pad(card, to: 80)
    }.joined()
    header += pad("END", to: 80)
    header = pad(header, to: (header.utf8.count + 2879) / 2880 * 2880)
    var file = Data(header.utf8)
    file.append(data)
    file.append(Data(count: (2880 - data.count % 2880) % 2880))
    try file.write(to: URL(fileURLWithPath: path))
}

private func bigEndianFloats(_ values: [Float]) -> Data {
    var data = Data()
    for value in values {
        withUnsafeBytes(of: value.bitPattern.bigEndian) { data.append(contentsOf: $0) }
    }
    return data
}

/// Asks python-casacore for the world coordinates of 0-based `pixels` in the image at `path`
/// and expects `wcs` to give the same RA/Dec (RA modulo 360) to within 1e-9 degrees.
private func expectCasacoreAgrees(path: String, wcs: WCS, pixels: [(Double, Double)]) throws {
    let script = """
        import sys, math
        from casacore.images import image
        im = image(sys.argv[1])
        for arg in sys.argv[2:]:
            x, y = (float(v) for v in arg.split(','))
            world = im.toworld([0, 0, y, x])
            print(math.degrees(world[3]), math.degrees(world[2]))
        """
    let output = try runPython(script, arguments: [path] + pixels.map { "\($0.0),\($0.1)" })
    let lines = output.split(separator: "\n").filter { !$0.isEmpty }
    #expect(lines.count == pixels.count, "casacore printed: \(output)")
    for (pixel, line) in zip(pixels, lines) {
        let numbers = line.split(separator: " ").compactMap { Double($0) }
        try #require(numbers.count == 2, "bad casacore line: \(line)")
        let ours = try wcs.pixelToWorld(x: pixel.0, y: pixel.1)
        var dRA = (ours.raDeg - numbers[0]).truncatingRemainder(dividingBy: 360)
        if dRA > 180 { dRA -= 360 }
        if dRA < -180 { dRA += 360 }
        #expect(abs(dRA) < 1e-9 && abs(ours.decDeg - numbers[1]) < 1e-9,
                "pixel \(pixel): ours \(ours), casacore \(numbers)")
    }
}

/// Runs `/usr/bin/python3 -c script arguments…`, output to files (not pipes), and returns its
/// standard output; a non-zero exit records an issue with its standard error.
private func runPython(_ script: String, arguments: [String]) throws -> String {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("selfcal-python-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let stdout = directory.appendingPathComponent("stdout")
    let stderr = directory.appendingPathComponent("stderr")
    try Data().write(to: stdout)
    try Data().write(to: stderr)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", script] + arguments
    process.standardOutput = try FileHandle(forWritingTo: stdout)
    process.standardError = try FileHandle(forWritingTo: stderr)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    let output = try String(contentsOf: stdout, encoding: .utf8)
    if process.terminationStatus != 0 {
        let errors = (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
        Issue.record("python3 exited \(process.terminationStatus): \(errors)")
    }
    return output
}
