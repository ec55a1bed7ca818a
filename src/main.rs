//! The `ferry` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    ferry::main()
}
