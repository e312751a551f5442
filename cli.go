package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/internal/journallog"
	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/ops"
	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/state"
	"github.com/irqshift/irqshift/sysfs"
)

// Exit codes, documented in the README.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitUnmovable = 3 // done, but some IRQs could not be moved
)

// version is set by the Makefile with -ldflags.
var version = "dev"

// checkWriteAccess asks the kernel whether this process may write fs's
// IRQ and CPU files; tests replace it to act as a non-root user.
var checkWriteAccess = sysfs.FS.CheckWriteAccess

// exitCoder carries an exit code through urfave/cli's error return.
type exitCoder struct {
	code int
	err  error
}

func (e exitCoder) Error() string { return e.err.Error() }
func (e exitCoder) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return exitCoder{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// run is the whole program: it parses args, runs one command and returns
// the exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp(stdout, stderr, getenv)
	var unknown string
	app.CommandNotFound = func(_ *cli.Context, name string) { unknown = name }
	err := app.RunContext(ctx, flagsFirst(args))
	if unknown != "" {
		hint := ""
		if best := closest(unknown, visibleCommands(app)); best != "" {
			hint = "; did you mean " + best + "?"
		}
		err = usageError("%s is not a command%s (the commands: %s; irqshift --help says more)", quote.Quote(unknown), hint, commandNames(app))
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if msg := err.Error(); msg != "" {
		// An error can quote a name a driver chose: no control
		// character of it reaches the terminal.
		lines := strings.Split(msg, "\n")
		for i, line := range lines {
			lines[i] = quote.Printable(line)
		}
		fmt.Fprintf(stderr, "irqshift: %s\n", strings.Join(lines, "\n"))
	}
	return code
}

// commandNames lists the commands an operator can type.
func commandNames(app *cli.App) string { return strings.Join(visibleCommands(app), ", ") }

func visibleCommands(app *cli.App) []string {
	var names []string
	for _, cmd := range app.Commands {
		if !cmd.Hidden {
			names = append(names, cmd.Name)
		}
	}
	return names
}

// exitCode maps an error to the exit status the README documents. A
// failure that loses intent or was cut short (state not saved,
// interrupted, no privilege) is 1 even when some IRQs also failed to move.
func exitCode(err error) int {
	var coded exitCoder
	switch {
	case errors.As(err, &coded):
		return coded.code
	case errors.Is(err, ops.ErrStateNotSaved), errors.Is(err, ops.ErrInterrupted), errors.Is(err, sysfs.ErrPermission):
		return exitError
	case errors.Is(err, affinity.ErrBadCPU), errors.Is(err, ops.ErrBadRequest), isFlagError(err):
		return exitUsage
	case errors.Is(err, ops.ErrNotMoved):
		return exitUnmovable
	}
	return exitError
}

// globalValueFlags and globalBoolFlags are the global flags, with one
// and two dashes, that take a separate value and that take none; derived
// from globalFlags, so a new flag needs no entry here.
var globalValueFlags, globalBoolFlags = flagSpellings(globalFlags())

func flagSpellings(flags []cli.Flag) (value, boolean map[string]bool) {
	value, boolean = map[string]bool{}, map[string]bool{}
	for _, f := range flags {
		set := value
		if _, isBool := f.(*cli.BoolFlag); isBool {
			set = boolean
		}
		for _, name := range f.Names() {
			set["-"+name], set["--"+name] = true, true
		}
	}
	return value, boolean
}

// reorderable are the commands that take arguments, whose flags are
// booleans or in commandValueFlags.
var reorderable = map[string]bool{"list": true, "drain": true, "undrain": true, "offline": true, "online": true, "pin": true, "unpin": true}

// commandValueFlags are the flags of reorderable commands that take a
// value: flagsFirst moves the value with its flag.
var commandValueFlags = map[string]bool{"--sample": true, "-sample": true, "--cpu": true, "-cpu": true, "--node": true, "-node": true,
	"--class": true, "-class": true, "--name": true, "-name": true, "--output": true, "-output": true, "-o": true, "--o": true}

// flagsFirst moves a command's flags before its CPU arguments, so that
// "irqshift drain 2 --dry-run" works as people type it: urfave/cli stops
// reading flags at the first argument. A flag of commandValueFlags takes
// its value along (unless written flag=value); every other command flag is
// a boolean. "--" ends the reordering.
func flagsFirst(args []string) []string {
	// Shell completion asks with its flag last ("irqshift pin 13
	// --generate-bash-completion"): it stays last, where urfave/cli looks.
	if n := len(args); n > 0 && args[n-1] == "--generate-bash-completion" {
		return append(flagsFirst(args[:n-1:n-1]), args[n-1])
	}
	cmd := -1
	for i := 1; i < len(args); i++ {
		if args[i] == "--" {
			return args
		}
		if !strings.HasPrefix(args[i], "-") {
			cmd = i
			break
		}
		if globalValueFlags[args[i]] {
			i++
		}
	}
	if cmd < 0 {
		return args
	}
	args, cmd = hoistGlobalFlags(args, cmd)
	if !reorderable[args[cmd]] {
		return args
	}
	var flags, positional []string
	tail := args[cmd+1:]
	for i := 0; i < len(tail); i++ {
		arg := tail[i]
		if arg == "--" {
			positional = append(positional, tail[i:]...)
			break
		}
		switch {
		case commandValueFlags[arg] && i+1 < len(tail):
			flags = append(flags, arg, tail[i+1])
			i++
		case strings.HasPrefix(arg, "-") && len(arg) > 1 && (arg[1] < '0' || arg[1] > '9'):
			flags = append(flags, arg)
		default:
			positional = append(positional, arg)
		}
	}
	out := append([]string{}, args[:cmd+1]...)
	out = append(out, flags...)
	return append(out, positional...)
}

// hoistGlobalFlags moves global flags given after the command name before
// it, where urfave/cli reads them: the unit runs `irqshift … watch
// $IRQSHIFT_ARGS`, and "--log-level debug" there must work. It returns the
// new arguments and the command's new index.
func hoistGlobalFlags(args []string, cmd int) ([]string, int) {
	var global, rest []string
	tail := args[cmd+1:]
	for i := 0; i < len(tail); i++ {
		arg := tail[i]
		if arg == "--" {
			rest = append(rest, tail[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(arg, "=")
		switch {
		case globalValueFlags[name] && !hasValue && i+1 < len(tail):
			global = append(global, arg, tail[i+1])
			i++
		case globalValueFlags[name] || globalBoolFlags[name]:
			global = append(global, arg)
		default:
			rest = append(rest, arg)
		}
	}
	if len(global) == 0 {
		return args, cmd
	}
	out := append([]string{}, args[:cmd]...)
	out = append(out, global...)
	out = append(out, args[cmd])
	return append(out, rest...), len(args[:cmd]) + len(global)
}

// isFlagError recognises urfave/cli's and the flag package's complaints
// about unknown or malformed flags.
func isFlagError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "flag provided but not defined") ||
		strings.HasPrefix(msg, "invalid value") ||
		strings.Contains(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "Required flag")
}

// options is what a command needs: the operations' environment, the
// resolved settings, and where to print.
type options struct {
	fs       sysfs.FS
	env      *ops.Env
	resolver *resolver
	logger   *slog.Logger
	json     bool
	dryRun   bool
	stdout   io.Writer
	stderr   io.Writer
}

func newApp(stdout, stderr io.Writer, getenv func(string) string) *cli.App {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON (formats: JSON OUTPUT in irqshift(8), docs/JSON.md)"}
	dryRunFlag := &cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the plan, write nothing"}
	verifyFlag := &cli.BoolFlag{Name: "verify", Usage: "afterwards, prove with eBPF over 2 s that moved IRQs fire on their new CPUs (exit 3 if not)"}
	sampleFlag := &cli.DurationFlag{Name: "sample", Value: defaultSample, Usage: "measure each IRQ's interrupt rate for this long first (IRQSHIFT_SAMPLE; 0: counts only; 0 unless set on a fixture tree)"}
	// Options that also come from the environment and the config file
	// name their variable; settings.go resolves them in one order (flag >
	// environment > config file > default), so no flag here has EnvVars.
	app := &cli.App{
		Name:      "irqshift",
		Usage:     "keep device IRQs off CPUs going offline and spread them round-robin over the online CPUs",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		ExitErrHandler: func(*cli.Context, error) {
			// run maps errors to exit codes; never let cli call os.Exit.
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			flags := globalFlags()
			if c != nil && c.Command != nil {
				flags = append(flags, c.Command.Flags...)
			}
			return usageError("%s%s", flagProblem(err), flagSuggestion(err, flags))
		},
		Flags: globalFlags(),

		Commands: []*cli.Command{
			listCommand(withOptions(stdout, stderr, getenv, false, cmdList), jsonFlag, sampleFlag),
			statusCommand(withOptions(stdout, stderr, getenv, false, noArgs(cmdStatus)), jsonFlag),
			{
				Name:        "rules",
				Usage:       "show the device rules (--rules), the IRQs each matches now and where they are, and problems",
				Description: rulesDescription,
				Flags:       []cli.Flag{jsonFlag},
				Action:      withOptions(stdout, stderr, getenv, false, noArgs(cmdRules)),
			},
			{
				Name:   "rebalance",
				Usage:  "spread every movable IRQ round-robin over the allowed CPUs",
				Flags:  []cli.Flag{jsonFlag, dryRunFlag, verifyFlag, sampleFlag},
				Action: withOptions(stdout, stderr, getenv, true, noArgs(cmdRebalance)),
			},
			{
				Name:      "drain",
				Usage:     "move every movable IRQ off the given CPUs and keep them off until undrain",
				ArgsUsage: "CPU...",
				Flags:     []cli.Flag{jsonFlag, dryRunFlag, verifyFlag, sampleFlag},
				Action:    withOptions(stdout, stderr, getenv, true, cmdDrain),
			},
			{
				Name:      "undrain",
				Usage:     "give drained CPUs back to IRQs, then rebalance",
				ArgsUsage: "CPU...",
				Flags:     []cli.Flag{jsonFlag, dryRunFlag, verifyFlag},
				Action:    withOptions(stdout, stderr, getenv, true, cmdUndrain),
			},
			{
				Name:      "offline",
				Usage:     "drain the given CPUs, take them offline, and check that no movable IRQ is left on them",
				ArgsUsage: "CPU...",
				Flags:     []cli.Flag{jsonFlag, verifyFlag, sampleFlag},
				Action:    withOptions(stdout, stderr, getenv, true, cmdOffline),
			},
			watchCommand(withOptions(stdout, stderr, getenv, true, noArgs(cmdWatch))),
			verifyCommand(stdout, stderr, getenv),
			topCommand(stdout, stderr, getenv),
			{
				Name:   "man",
				Usage:  "print the man page (roff), for make install",
				Hidden: true,
				Action: func(c *cli.Context) error {
					_, err := io.WriteString(stdout, manPage(c.App))
					return err
				},
			},
			{
				Name:      "pin",
				Usage:     "pin an IRQ to CPUs and remember it: irqshift restores it after the kernel breaks it",
				ArgsUsage: "IRQ CPUS",
				Flags:     []cli.Flag{jsonFlag, persistFlag("also keep the pin across reboots: a rule of the IRQ's device and action in the rules directory's " + rules.PinsFile)},
				Action:    withOptions(stdout, stderr, getenv, true, cmdPin),
			},
			{
				Name:      "unpin",
				Usage:     "forget the pin of an IRQ (its mask stays until the next rebalance)",
				ArgsUsage: "IRQ",
				Flags:     []cli.Flag{jsonFlag, persistFlag("also remove the rule pin --persist wrote for it")},
				Action:    withOptions(stdout, stderr, getenv, true, cmdUnpin),
			},
			{
				Name:      "online",
				Usage:     "bring the given CPUs online, give back those irqshift offline drained, then rebalance",
				ArgsUsage: "CPU...",
				Flags:     []cli.Flag{jsonFlag, verifyFlag},
				Action:    withOptions(stdout, stderr, getenv, true, cmdOnline),
			},
			versionCommand(stdout, jsonFlag),
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
	}
	finishApp(app)
	return app
}

func persistFlag(usage string) cli.Flag { return &cli.BoolFlag{Name: "persist", Usage: usage} }

// globalFlags are the flags every command takes. Those of a setting name
// its environment key; settings.go resolves them in one order (flag >
// environment > config file > default), so no flag here has EnvVars.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "proc", Value: "/proc", Usage: "proc file system root (a fixture tree in tests)"},
		&cli.StringFlag{Name: "sys", Value: "/sys", Usage: "sys file system root (a fixture tree in tests)"},
		&cli.StringFlag{Name: "config", Usage: "an EnvironmentFile of IRQSHIFT_* settings, re-read by the daemon on SIGHUP (default " + DefaultConfigPath + " on the live system when it exists; \"none\" reads none)"},
		&cli.StringFlag{Name: "banned-cpus", Usage: "cpulist of CPUs no IRQ may be moved to (" + settingBannedCPUs.key + "); " + settingBannedCPUList.key + " and " + settingBannedCPUMask.key + " are added"},
		&cli.StringFlag{Name: "banned-irqs", Usage: "comma-separated IRQ numbers irqshift never touches (" + settingBannedIRQs.key + ")"},
		&cli.BoolFlag{Name: "include-isolated", Usage: "allow isolated and nohz_full CPUs as targets (" + settingIncludeIsolated.key + ")"},
		&cli.BoolFlag{Name: "include-pinned", Usage: "let rebalance move IRQs the admin pinned (" + settingIncludePinned.key + ")"},
		&cli.StringFlag{Name: "state", Usage: "state file of pins, drained CPUs and learned IRQs (IRQSHIFT_STATE; default " + state.DefaultPath + " on the live system, none on a fixture tree; \"none\" turns it off)"},
		&cli.StringFlag{Name: "numa", Usage: "local (default): keep each IRQ on its device's NUMA node while that node has an allowed CPU; ignore: spread over all allowed CPUs (IRQSHIFT_NUMA)"},
		&cli.StringFlag{Name: "balance", Usage: "load (default): with IRQ counts per CPU within one, put busy IRQs on distinct CPUs and keep the busiest CPU's interrupt rate low; count: counts only (" + settingBalance.key + ")"},
		&cli.StringFlag{Name: "learn-pins", Usage: "true (default): a mask set by hand (echo 4 > /proc/irq/N/smp_affinity_list) is the operator's pin, kept until reboot; false: only irqshift pin and rules say where an IRQ belongs (" + settingLearnPins.key + ")"},
		&cli.StringFlag{Name: "rules", Usage: "directory of device rules, *.toml files read in name order (" + settingRules.key + "; default " + DefaultRulesDir + " on the live system, none on a fixture tree; \"none\" reads none)"},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "debug, info, warn or error"}}
}

// noArgs refuses stray arguments of a command that takes none.
func noArgs(action func(*cli.Context, *options) error) func(*cli.Context, *options) error {
	return func(c *cli.Context, o *options) error {
		if c.NArg() > 0 {
			return usageError("%s takes no arguments (got %s)", c.Command.Name, quote.Quote(strings.Join(c.Args().Slice(), " ")))
		}
		return action(c, o)
	}
}

// newLogger logs to stderr at --log-level (info for the daemon unless set).
// Under systemd (JOURNAL_STREAM names stderr) each line starts with its
// syslog priority, which the journal reads (journalctl -p warning), and
// has no timestamp, which the journal adds.
func newLogger(c *cli.Context, stderr io.Writer, getenv func(string) string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageError("--log-level %s: want debug, info, warn or error", quote.Quote(c.String("log-level")))
	}
	if c.Command.Name == "watch" && !c.IsSet("log-level") {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if !toJournal(stderr, getenv("JOURNAL_STREAM")) {
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	}
	opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	return slog.New(journallog.NewTextHandler(stderr, opts)), nil
}

// toJournal tells whether stderr is the stream systemd's journal reads:
// JOURNAL_STREAM ("DEVICE:INODE") names it. A command run from a shell
// that inherited the variable writes to a terminal instead, and gets plain
// lines. A writer that is not a file (a test's buffer) is taken at the
// variable's word.
func toJournal(stderr io.Writer, stream string) bool {
	if stream == "" {
		return false
	}
	f, ok := stderr.(*os.File)
	if !ok {
		return true
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// withOptions resolves the settings and builds the operations'
// environment before a command runs. Privilege is checked by the
// operations themselves, before they lock or read anything.
func withOptions(stdout, stderr io.Writer, getenv func(string) string, writes bool,
	action func(*cli.Context, *options) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		logger, err := newLogger(c, stderr, getenv)
		if err != nil {
			return err
		}
		fs, err := sysfs.NewFS(c.String("proc"), c.String("sys"))
		if err != nil {
			return usageError("--proc/--sys: %v", err)
		}
		r, err := newResolver(c, getenv, fs.IsLive())
		if err != nil {
			return usageError("%v", err)
		}
		r.logger = logger
		r.warnUnknownKeys(logger)
		settings, err := r.settings()
		if err != nil {
			return err
		}
		warnMissingBannedCPUs(logger, fs, settings.Banned.User)
		env := &ops.Env{FS: fs, Settings: settings, Logger: logger, CheckAccess: func() error { return checkWriteAccess(fs) }}
		statePath, _ := r.get(settingState)
		if path := resolveStatePath(statePath, fs); path != "" {
			if env.Store, err = state.OpenStore(path); err != nil {
				return withHint(c, err)
			}
		}
		return withHint(c, action(c, &options{
			fs:       fs,
			env:      env,
			resolver: r,
			logger:   logger,
			json:     c.Bool("json"),
			dryRun:   c.Bool("dry-run"),
			stdout:   stdout,
			stderr:   stderr,
		}))
	}
}

// warnMissingBannedCPUs warns of banned CPUs this machine does not have:
// a ban that does nothing is most likely a typo or a file copied from a
// bigger machine.
func warnMissingBannedCPUs(logger *slog.Logger, fs sysfs.FS, banned sysfs.CPUSet) {
	if banned.IsEmpty() {
		return
	}
	info, err := fs.CPUInfo()
	if err != nil || info.Possible.IsEmpty() {
		return
	}
	if missing := banned.Difference(info.Possible); !missing.IsEmpty() {
		logger.Warn("banned CPUs that do not exist here; their ban does nothing", "cpus", missing.String(), "possible", info.Possible.String())
	}
}

// withHint adds to an error what the operator can do about it, in the
// words of this command's flags: the core's errors name no flag.
func withHint(c *cli.Context, err error) error {
	hint := ""
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sysfs.ErrPermission):
		hint = "run as root (sudo)"
		if slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "dry-run") }) {
			hint += ", or use --dry-run to see the plan"
		}
	case errors.Is(err, state.ErrNotOurs):
		hint = "give --state a path of irqshift's own (the default is " + state.DefaultPath + "), or move the file away"
	case errors.Is(err, state.ErrStatePath):
		hint = "give --state the path of a regular file of irqshift's, or --state none"
	case errors.Is(err, state.ErrLockUnavailable):
		hint = "give --state a path on a writable file system, or --state none"
	case errors.Is(err, ops.ErrNoState):
		hint = "give --state PATH"
	default:
		return err
	}
	return hintError{err: err, hint: hint}
}

// hintError is an error with what to do about it.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() + "; " + e.hint }
func (e hintError) Unwrap() error { return e.err }

// resolveStatePath applies the --state default: the system's state file on
// the live system, none on a fixture tree (tests must not touch /run).
func resolveStatePath(value string, fs sysfs.FS) string {
	switch {
	case value == "none":
		return ""
	case value != "":
		return value
	case fs.IsLive():
		return state.DefaultPath
	}
	return ""
}

// parseCPUArgs reads CPU numbers given as separate arguments or cpulists
// ("2 3", "2-3", "2,3").
func parseCPUArgs(c *cli.Context) ([]int, error) {
	if c.NArg() == 0 {
		return nil, usageError("%s: give at least one CPU number", c.Command.Name)
	}
	var cpus []int
	for _, arg := range c.Args().Slice() {
		set, err := sysfs.ParseCPUList(arg)
		if err != nil || set.IsEmpty() {
			return nil, usageError("%s: %s is not a CPU number or list", c.Command.Name, quote.Quote(arg))
		}
		cpus = append(cpus, set.CPUs()...)
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}
