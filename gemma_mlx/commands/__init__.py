"""The subcommands beside generate, chat and batch: each module adds its flags and runs one."""
