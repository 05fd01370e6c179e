// Follows a growing log file and hands new lines to a callback, with bounded work per poll.

/// Splits bytes into lines. A line that stays unterminated for `staleAfter` (WSClean's
/// `0%....10%....` progress, printed piece by piece) is handed out in pieces as it grows;
/// a line longer than `maxLine` bytes is cut.
struct LineSplitter {
    static let staleAfter: Duration = .milliseconds(250)
    static let maxLine = 4096

    private var pending: [UInt8] = []
    private var pendingSince: ContinuousClock.Instant?
    private var discardingUntilNewline = false

    /// Forget the unfinished line and everything up to the next newline (bytes were skipped, so
    /// what follows starts mid-line).
    mutating func skipToNextLine() {
        pending.removeAll(keepingCapacity: true)
        pendingSince = nil
        discardingUntilNewline = true
    }

    /// Adds bytes; returns the lines they complete (without their `\n`, or `\r\n`).
    mutating func append(_ bytes: ArraySlice<UInt8>, at now: ContinuousClock.Instant) -> [String] {
        var lines: [String] = []
        var rest = bytes
        while !rest.isEmpty {
            let newline = rest.firstIndex(of: UInt8(ascii: "\n"))
            let piece = rest[rest.startIndex..<(newline ?? rest.endIndex)]
            rest = newline.map { rest[($0 + 1)...] } ?? []
            if discardingUntilNewline {
                if newline != nil { discardingUntilNewline = false }
                continue
            }
            if pending.isEmpty && !piece.isEmpty { pendingSince = now }
            pending.append(contentsOf: piece)
            if newline != nil {
                lines.append(takePending())
            } else {
                while pending.count >= Self.maxLine {
                    lines.append(decode(pending[0..<Self.maxLine]))
                    pending.removeFirst(Self.maxLine)
                }
            }
        }
        return lines
    }

    /// The unfinished line, if it has waited `staleAfter` for its end.
    mutating func takeStale(at now: ContinuousClock.Instant) -> String? {
        guard !pending.isEmpty, let since = pendingSince, now - since >= Self.staleAfter else {
            return nil
        }
        return takePending()
    }

    /// The unfinished line at the end of the output, if any.
    mutating func finish() -> String? {
        pending.isEmpty ? nil : takePending()
    }

    private mutating func takePending() -> String {
        let line = decode(pending[...])
        pending.removeAll(keepingCapacity: true)
        pendingSince = nil
        return line
    }

    private func decode(_ bytes: ArraySlice<UInt8>) -> String {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reads what a child appends to its log file and passes it on line by line.
///
/// At most `maxBytesPerPoll` are read per poll: a tool that floods its output has the excess
/// skipped here (the log file keeps everything), so the callback cannot fall behind forever.
struct OutputFollower {
    static let maxBytesPerPoll: Int64 = 64 * 1024

    let fd: Int32
    private(set) var offset: Int64
    private var splitter = LineSplitter()
    private let onOutput: (@Sendable (String) -> Void)?

    init(fd: Int32, offset: Int64, onOutput: (@Sendable (String) -> Void)?) {
        self.fd = fd
        self.offset = offset
        self.onOutput = onOutput
    }

    /// Hands out the lines appended since the last call (the file is `size` bytes long now).
    mutating func poll(size: Int64, at now: ContinuousClock.Instant) {
        guard let onOutput else { return }
        if size > offset {
            var from = offset
            if size - from > Self.maxBytesPerPoll {
                from = size - Self.maxBytesPerPoll
                splitter.skipToNextLine()
            }
            let bytes = (try? Syscall.read(fd, count: Int(size - from), at: from)) ?? []
            offset = from + Int64(bytes.count)
            for line in splitter.append(bytes[...], at: now) { onOutput(line) }
        }
        if let piece = splitter.takeStale(at: now) { onOutput(piece) }
    }

    /// The last poll, after the child has ended: everything left, the unfinished line included.
    mutating func finish(size: Int64, at now: ContinuousClock.Instant) {
        poll(size: size, at: now)
        if let onOutput, let rest = splitter.finish() { onOutput(rest) }
    }
}
