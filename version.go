package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/urfave/cli/v2"
)

// versionDoc is `irqshift version --json`.
type versionDoc struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func currentVersion() versionDoc {
	return versionDoc{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

func init() {
	// -V as well as --version, as irqbalance, lsirq and most tools take
	// it; -v stays free for nothing (urfave's default) rather than for a
	// verbosity it would suggest.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Aliases: []string{"V"}, Usage: "print the version and exit"}
}

func versionCommand(stdout io.Writer, jsonFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print irqshift's version, the Go release that built it and its platform",
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError("version takes no arguments")
			}
			v := currentVersion()
			if c.Bool("json") {
				return writeJSON(stdout, v)
			}
			_, err := fmt.Fprintf(stdout, "irqshift version %s (%s, %s/%s)\n", v.Version, v.Go, v.OS, v.Arch)
			return err
		},
	}
}
