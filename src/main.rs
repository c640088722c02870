fn main() -> std::process::ExitCode {
    kqlc::cli::main()
}
