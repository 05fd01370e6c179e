#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The one way selfcal writes a file that a reader must never see half-written: write a temporary
/// file beside it, `fsync` it, `rename(2)` it over the target, then `fsync` the directory.
///
/// What can go wrong: the directory is missing or read-only, the disk is full, or the rename
/// fails; each is a thrown ``PipelineError`` (`.badInput`) naming the path and the system's
/// reason, and the temporary file is removed.
public enum AtomicFile {
    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws(PipelineError) {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create", tmp) }
        var ok = true
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    ok = false
                    return
                }
                offset += n
            }
        }
        if !ok {
            let e = failure("cannot write", path)
            close(fd)
            unlink(tmp)
            throw e
        }
        if fsync(fd) != 0 {
            let e = failure("cannot flush", path)
            close(fd)
            unlink(tmp)
            throw e
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = failure("cannot rename \(tmp) to", path)
            unlink(tmp)
            throw e
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// Writes `text` as UTF-8 to `path` atomically.
    public static func write(_ text: String, to path: String) throws(PipelineError) {
        try write(Data(text.utf8), to: path)
    }

    private static func failure(_ what: String, _ path: String) -> PipelineError {
        let reason = String(cString: strerror(errno))
        return PipelineError(.badInput, "\(what) the file: \(reason)", context: path)
    }
}
