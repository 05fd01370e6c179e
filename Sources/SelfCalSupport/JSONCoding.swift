import Foundation

/// The one JSON configuration selfcal's files use: snake_case keys, sorted and pretty-printed,
/// slashes unescaped — `report.json`, `state.json`, `batch-summary.json`, truth files and
/// process records all read and write through these.
public enum JSONCoding {
    /// An encoder for selfcal's JSON files.
    public static func encoder() -> JSONEncoder {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return enc
    }

    /// A decoder for selfcal's JSON files.
    public static func decoder() -> JSONDecoder {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        return dec
    }

    /// Encodes `value` and writes it atomically to `path`.
    ///
    /// Throws `.badInput` naming the path when it cannot be written.
    public static func write<T: Encodable>(_ value: T, to path: String) throws(PipelineError) {
        let data: Data
        do { data = try encoder().encode(value) } catch {
            throw PipelineError(.badInput, "cannot encode JSON: \(error)", context: path)
        }
        try AtomicFile.write(data, to: path)
    }

    /// Reads and decodes `path`; nil when the file does not exist.
    ///
    /// Throws `.badInput` naming the path when it exists but cannot be decoded.
    public static func read<T: Decodable>(_ type: T.Type, from path: String) throws(PipelineError) -> T? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try decoder().decode(type, from: data) } catch {
            throw PipelineError(.badInput, "unreadable JSON (\(error)); remove or restore it", context: path)
        }
    }
}
