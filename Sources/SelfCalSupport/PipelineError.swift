/// The one error type every selfcal stage throws: a code that decides the exit status,
/// a message a person can act on, and the context (file, column, key, command) at fault.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public enum Code: Int32, Sendable {
        /// Bad configuration or command-line arguments (exit 2).
        case badConfig = 2
        /// Bad input data: a missing MS, missing column, unreadable catalog (exit 3).
        case badInput = 3
        /// An external tool failed or timed out (exit 4).
        case toolFailed = 4
        /// Interrupted by SIGINT/SIGTERM (exit 130).
        case interrupted = 130
    }

    public var code: Code
    public var message: String
    /// What the error is about: a path, a column, a config key, a command line.
    public var context: String?

    public init(_ code: Code, _ message: String, context: String? = nil) {
        self.code = code
        self.message = message
        self.context = context
    }

    public var description: String {
        if let context { return "\(context): \(message)" }
        return message
    }

    public var exitCode: Int32 { code.rawValue }
}
