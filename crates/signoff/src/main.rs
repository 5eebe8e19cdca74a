//! `signoff`: one binary that is both the server (`signoff serve`) and the
//! command line for people and scripts. Commands parse their arguments, call
//! one function, and print; the exit code tells scripts what happened (see
//! `signoff --help`).

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::commands::{Outcome, UsageError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Outcome::Error.into();
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            // A client error already names its cause; others get their chain.
            let message = if error
                .downcast_ref::<signoff_client::ClientError>()
                .is_some()
            {
                error.to_string()
            } else {
                format!("{error:#}")
            };
            anstream::eprintln!(
                "{}error:{} {message}",
                output::ERROR,
                output::ERROR.render_reset()
            );
            if error.downcast_ref::<UsageError>().is_some() {
                Outcome::Usage.into()
            } else {
                Outcome::Error.into()
            }
        }
    }
}
