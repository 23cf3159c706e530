//! The `aixin` binary; the command line itself is the library's edge [`aixin::cli`].

fn main() -> std::process::ExitCode {
    aixin::cli::main()
}
