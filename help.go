package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// finishApp gives the commands newApp built their examples, the help
// layout, the man page and shell completion.
func finishApp(app *cli.App) {
	if app.Command("completion") == nil {
		app.Commands = append(app.Commands, completionCommand(app))
	}
	for _, cmd := range app.Commands {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = app.OnUsageError
		}
	}
	setUpCompletion(app)
	// The help of the app is made when it is shown, after cli.App.Setup
	// has added the help command and the --help and --version flags:
	// ExtraInfo is the one function urfave/cli hands its app template. A
	// command's help is made here: its template is its text. Neither
	// touches urfave/cli's global HelpPrinter or templates.
	app.ExtraInfo = func() map[string]string { return map[string]string{"help": appHelp(indexFlags(app))} }
	app.CustomAppHelpTemplate = `{{index ExtraInfo "help"}}`
	flags := indexFlags(app)
	for _, cmd := range app.Commands {
		if cmd.CustomHelpTemplate == "" {
			cmd.CustomHelpTemplate = templateLiteral(commandHelp(flags, cmd))
		}
	}
}

// helpWidth is the widest line of every --help.
const helpWidth = 80

// example is a command line of the EXAMPLES of --help and of the man
// page, with what it does in one line.
type example struct{ line, comment string }

// examples are the examples of each command, keyed by its name; "" holds
// those of `irqshift --help`. An example naming a command, flag or
// argument the app does not have (yet) is left out (exampleFits), so a
// command's examples can be written before it gains what they use. A line
// not starting with "irqshift" (systemctl, a shell construct) is kept as
// written.
var examples = map[string][]example{
	"": {
		{"irqshift list", "every IRQ: chip, masks, effective CPU, rate, class"},
		{"irqshift drain --dry-run 4-7", "what would move off CPUs 4-7 (nothing is written)"},
		{"irqshift offline 7", "drain CPU 7, check that nothing is left on it, take it offline"},
		{"irqshift online 7", "bring CPU 7 back and give it its share of IRQs again"},
		{"irqshift status", "is the daemon running; what is drained, banned, pinned, misplaced"},
		{"irqshift help drain", "a command's options and examples, as irqshift drain --help"},
	},
	"list": {
		{"irqshift list", "every IRQ with its chip, masks, effective CPU, rate and class"},
		{"irqshift list --sample 0", "at once: counts only, no one-second sample of the rates"},
		{"irqshift list 36 40", "only IRQs 36 and 40"},
		{"irqshift list --cpu 2", "the IRQs delivered to CPU 2"},
		{"irqshift list --node 1 --movable", "the IRQs irqshift may move whose device is on node 1"},
		{"irqshift list --class managed", "the managed IRQs, which the kernel shuts down with their CPU"},
		{"irqshift list --name 'nvme*' --wide", "the NVMe queues, with no column cut short"},
		{"irqshift list --no-headings --movable | wc -l", "how many IRQs irqshift may move"},
		{"irqshift list --json | jq '.irqs[] | select(.movable | not) | .irq'", "the IRQs irqshift leaves alone"},
	},
	"rules": {
		{"irqshift rules", "the rules of /etc/irqshift/rules.d, what each places now, problems"},
		{"irqshift --rules ./rules.d rules", "check a rules directory before installing it"},
		{"irqshift rules --json | jq '.problems'", "only the problems, for a monitoring check"},
	},
	"rebalance": {
		{"irqshift rebalance --dry-run", "the moves a rebalance would make, writing nothing"},
		{"irqshift rebalance --verify", "spread the IRQs, then prove with eBPF that they fire there"},
		{"irqshift --balance count rebalance", "spread by IRQ counts alone, ignoring interrupt rates"},
		{"irqshift --banned-cpus 0 rebalance", "keep every IRQ off CPU 0 as well"},
	},
	"drain": {
		{"irqshift drain --dry-run 4-7", "what would move off CPUs 4-7 (nothing is written)"},
		{"irqshift drain 4-7", "move the IRQs off CPUs 4-7 and keep them off until undrain"},
		{"irqshift drain --verify --json 3 | jq .summary", "drain CPU 3, confirm with eBPF, count"},
	},
	"undrain": {
		{"irqshift undrain 4-7", "give CPUs 4-7 back to IRQs, then rebalance"},
		{"irqshift undrain --dry-run 4-7", "the moves an undrain would make, writing nothing"},
	},
	"offline": {
		{"irqshift offline 7", "drain CPU 7, check that nothing is left on it, take it offline"},
		{"irqshift offline --verify 6 7", "the same for CPUs 6 and 7, confirming the moves with eBPF"},
		{"irqshift offline --sample 0 7", "plan by IRQ counts, without the one-second rate sample"},
	},
	"online": {
		{"irqshift online 7", "bring CPU 7 online and give it its share of IRQs again"},
		{"irqshift online --verify 6-7", "bring CPUs 6 and 7 back, confirming the moves with eBPF"},
	},
	"pin": {
		{"irqshift pin 21 3", "pin IRQ 21 to CPU 3; irqshift restores it after an offline"},
		{"irqshift pin --persist 21 2-3", "pin it to CPUs 2-3 across reboots too (a device rule)"},
	},
	"unpin": {
		{"irqshift unpin 21", "forget the pin of IRQ 21; the next rebalance spreads it"},
		{"irqshift unpin --persist 21", "also remove the rule pin --persist wrote for it"},
	},
	"watch": {
		{"systemctl enable --now irqshift", "the usual way: the daemon as irqshift.service"},
		{"irqshift watch --log-level debug", "in the foreground, logging every settle"},
		{"irqshift watch --metrics-address 127.0.0.1:9815", "also serve Prometheus metrics"},
		{"irqshift watch --ban-file /etc/sysconfig/irqbalance", "follow CRI-O's and tuned's bans"},
		{"systemctl reload irqshift", "SIGHUP: read /etc/default/irqshift again"},
		{"journalctl -u irqshift -f", "follow the service's settles and moves"},
	},
	"verify": {
		{"irqshift verify", "where each IRQ fired over 2 s, against its effective affinity"},
		{"irqshift verify --irq 21 --duration 10s", "watch IRQ 21 alone, for ten seconds"},
		{"irqshift verify --all --json", "per-CPU IRQs too, as JSON"},
	},
	"top": {
		{"irqshift top", "live: interrupts per second per CPU and the busiest IRQs; q quits"},
		{"irqshift top --once --sort irq", "one frame after one second, IRQs by number"},
		{"irqshift top --json --interval 5s > rates.jsonl", "a JSON frame every 5 s, one a line"},
		{"irqshift top --ebpf", "count with eBPF rather than /proc/interrupts (root)"},
	},
	"status": {
		{"irqshift status", "is a daemon running; its last settle; drained and banned CPUs"},
		{"irqshift status --json", "the same as JSON, for monitoring"},
	},
	"version": {
		{"irqshift version", "the version, the Go release that built it and the platform"},
		{"irqshift -V", "the version alone"},
		{"irqshift version --json", "the same as JSON, for an inventory"},
		{"dpkg-query -W irqshift", "the version of the installed package, to compare"},
	},
	"completion": {
		{"source <(irqshift completion bash)", "complete irqshift's commands in this bash"},
		{"irqshift completion zsh > ~/.zfunc/_irqshift", "for zsh, in a directory of $fpath"},
		{"irqshift completion fish > ~/.config/fish/completions/irqshift.fish", "for fish"},
	},
}

// examplesOf returns the examples of a command (nil: the app's) that fit
// the app as it is.
func examplesOf(flags *flagSets, cmd *cli.Command) []example {
	name := ""
	if cmd != nil {
		name = cmd.Name
	}
	var out []example
	for _, ex := range examples[name] {
		if exampleFits(flags, cmd, ex.line) == "" {
			out = append(out, ex)
		}
	}
	return out
}

// exampleFits says why an example's command line does not fit the app
// ("" when it does): a command, flag or argument it names is not there.
// cmd is the command whose example it is, nil for the app's. Parsing stops
// at the first shell operator.
func exampleFits(flags *flagSets, cmd *cli.Command, line string) string {
	app := flags.app
	words := strings.Fields(line)
	if len(words) == 0 || words[0] != app.Name {
		return ""
	}
	global := flags.global
	var local map[string]cli.Flag
	var used *cli.Command
	args := 0
	for i := 1; i < len(words); i++ {
		w := words[i]
		if strings.ContainsAny(w[:1], "|<>;&") {
			break
		}
		if len(w) > 1 && w[0] == '-' {
			name, _, hasValue := strings.Cut(w, "=")
			f := local[name]
			if f == nil {
				f = global[name]
			}
			if f == nil {
				return "no flag " + name
			}
			if takesValue(f) && !hasValue {
				i++
			}
			continue
		}
		if used != nil {
			args++
			continue
		}
		if w == "help" && !app.HideHelp && !app.HideHelpCommand && cmd == nil {
			return ""
		}
		used = app.Command(w)
		if used == nil || (cmd != nil && used != cmd) {
			return "no command " + w
		}
		local = flags.of(used)
	}
	// A command's example may be global flags alone ("irqshift -V" for
	// version).
	if args > 0 && used != nil && used.ArgsUsage == "" {
		return used.Name + " takes no arguments"
	}
	return ""
}

// appFlags are the app's global flags with those cli.App.Setup adds.
func appFlags(app *cli.App) []cli.Flag {
	flags := slices.Clone(app.Flags)
	if !app.HideHelp && cli.HelpFlag != nil && !slices.Contains(flags, cli.HelpFlag) {
		flags = append(flags, cli.HelpFlag)
	}
	if !app.HideVersion && app.Version != "" && cli.VersionFlag != nil && !slices.Contains(flags, cli.VersionFlag) {
		flags = append(flags, cli.VersionFlag)
	}
	return flags
}

// commandFlags are a command's flags with the --help urfave/cli adds.
func commandFlags(app *cli.App, cmd *cli.Command) []cli.Flag {
	flags := slices.Clone(cmd.Flags)
	if !app.HideHelp && !cmd.HideHelp && cli.HelpFlag != nil && !slices.Contains(flags, cli.HelpFlag) {
		flags = append(flags, cli.HelpFlag)
	}
	return flags
}

// flagSets index the flags of an app and its commands by spelling, once
// (urfave/cli's Flag.Names runs a regular expression at every call).
type flagSets struct {
	app    *cli.App
	global map[string]cli.Flag
	local  map[*cli.Command]map[string]cli.Flag
}

func indexFlags(app *cli.App) *flagSets {
	return &flagSets{app: app, global: flagIndex(appFlags(app)), local: map[*cli.Command]map[string]cli.Flag{}}
}

// of is the index of a command's flags.
func (s *flagSets) of(cmd *cli.Command) map[string]cli.Flag {
	index, ok := s.local[cmd]
	if !ok {
		index = flagIndex(commandFlags(s.app, cmd))
		s.local[cmd] = index
	}
	return index
}

// visible leaves out hidden flags.
func visible(flags []cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		out = append(out, f)
	}
	return out
}

// flagIndex maps "--name" and "-n" to their flag.
func flagIndex(flags []cli.Flag) map[string]cli.Flag {
	index := map[string]cli.Flag{}
	for _, f := range flags {
		for _, name := range f.Names() {
			index[dashed(name)] = f
		}
	}
	return index
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func takesValue(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	return ok && d.TakesValue()
}

// flagArgs names the value of each flag that takes one, in --help and the
// man page ("--proc DIR"). A flag missing here is named by its type
// (flagDocOf); a backquoted word in its usage wins over both.
var flagArgs = map[string]string{
	"proc":            "DIR",
	"sys":             "DIR",
	"config":          "FILE",
	"banned-cpus":     "CPULIST",
	"banned-irqs":     "IRQS",
	"state":           "FILE",
	"numa":            "local|ignore",
	"balance":         "load|count",
	"learn-pins":      "true|false",
	"rules":           "DIR",
	"log-level":       "LEVEL",
	"sample":          "DURATION",
	"check-interval":  "DURATION",
	"metrics-address": "ADDRESS",
	"verify-window":   "DURATION",
	"ban-file":        "FILE",
	"duration":        "DURATION",
	"irq":             "IRQ",
	"interval":        "DURATION",
	"sort":            "KEY",
	// list's filters
	"cpu":    "CPULIST",
	"node":   "NODE",
	"class":  "CLASS",
	"name":   "GLOB",
	"output": "COLUMNS",
}

// flagDoc is a flag as --help and the man page show it.
type flagDoc struct {
	names []string // "--dry-run", "-n"
	arg   string   // the value's name; "" for a flag without one
	usage string
	def   string // the default, "" for none
}

func flagDocOf(f cli.Flag) flagDoc {
	doc := flagDoc{}
	for _, name := range f.Names() {
		doc.names = append(doc.names, dashed(name))
	}
	d, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return doc
	}
	arg, usage := unquoteUsage(d.GetUsage())
	doc.usage = usage
	if !d.TakesValue() {
		if d.GetDefaultText() == "true" {
			doc.def = "true"
		}
		return doc
	}
	switch {
	case arg != "":
	case flagArgs[f.Names()[0]] != "":
		arg = flagArgs[f.Names()[0]]
	default:
		switch f.(type) {
		case *cli.DurationFlag:
			arg = "DURATION"
		case *cli.IntFlag, *cli.IntSliceFlag, *cli.Int64Flag, *cli.UintFlag:
			arg = "N"
		default:
			arg = "VALUE"
		}
	}
	doc.arg = arg
	def := d.GetDefaultText()
	if unquoted, err := strconv.Unquote(def); err == nil {
		def = unquoted
	}
	if def != "[]" {
		doc.def = def
	}
	return doc
}

// unquoteUsage takes the first backquoted word of a usage as the name of
// the flag's value, as urfave/cli does: "read `FILE`" names it FILE.
func unquoteUsage(usage string) (name, text string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", usage
	}
	return name, before + name + after
}

// spelling is the flag as typed: "--dry-run, -n" or "--proc DIR".
func (d flagDoc) spelling() string {
	s := strings.Join(d.names, ", ")
	if d.arg != "" {
		s += " " + d.arg
	}
	return s
}

// text is the usage with the default.
func (d flagDoc) text() string {
	if d.def == "" {
		return d.usage
	}
	// A NUL keeps "(default: X)" on one line; wrapText makes it a space.
	return d.usage + " (default:\x00" + d.def + ")"
}

// appHelp is `irqshift --help`.
func appHelp(flags *flagSets) string {
	app := flags.app
	var b strings.Builder
	helpSection(&b, "NAME", wrapText(app.Name+" - "+app.Usage, 3, helpWidth))
	usage := app.UsageText
	if usage == "" {
		usage = app.Name + " [global options] command [options] [arguments...]"
	}
	helpSection(&b, "USAGE", wrapText(usage, 3, helpWidth))
	if !app.HideVersion && app.Version != "" {
		helpSection(&b, "VERSION", wrapText(app.Version, 3, helpWidth))
	}
	if app.Description != "" {
		helpSection(&b, "DESCRIPTION", wrapText(app.Description, 3, helpWidth))
	}
	var rows [][2]string
	for _, cmd := range app.VisibleCommands() {
		rows = append(rows, [2]string{strings.Join(cmd.Names(), ", "), cmd.Usage})
	}
	helpSection(&b, "COMMANDS", twoColumns(rows, 3, helpWidth))
	helpSection(&b, "GLOBAL OPTIONS", flagColumns(visible(appFlags(app))))
	if ex := examplesOf(flags, nil); len(ex) > 0 {
		helpSection(&b, "EXAMPLES", exampleText(ex))
	}
	fmt.Fprintf(&b, "Run \"%s COMMAND --help\" for a command's options and examples, and\n\"man %s\" for the manual.\n", app.Name, app.Name)
	return b.String()
}

// commandHelp is `irqshift CMD --help`.
func commandHelp(flags *flagSets, cmd *cli.Command) string {
	app := flags.app
	var b strings.Builder
	full := app.Name + " " + cmd.Name
	name := full
	if cmd.Usage != "" {
		name += " - " + cmd.Usage
	}
	helpSection(&b, "NAME", wrapText(name, 3, helpWidth))
	usage := cmd.UsageText
	if usage == "" {
		usage = commandSynopsis(app, cmd)
	}
	helpSection(&b, "USAGE", wrapText(usage, 3, helpWidth))
	if len(cmd.Aliases) > 0 {
		helpSection(&b, "ALIASES", wrapText(strings.Join(cmd.Aliases, ", "), 3, helpWidth))
	}
	if cmd.Description != "" {
		helpSection(&b, "DESCRIPTION", wrapText(cmd.Description, 3, helpWidth))
	}
	if shown := visible(commandFlags(app, cmd)); len(shown) > 0 {
		helpSection(&b, "OPTIONS", flagColumns(shown))
	}
	if ex := examplesOf(flags, cmd); len(ex) > 0 {
		helpSection(&b, "EXAMPLES", exampleText(ex))
	}
	fmt.Fprintf(&b, "Global options: \"%s --help\". The manual: \"man %s\".\n", app.Name, app.Name)
	return b.String()
}

// commandSynopsis is "irqshift [global options] drain [options] CPU...".
func commandSynopsis(app *cli.App, cmd *cli.Command) string {
	s := app.Name + " [global options] " + cmd.Name
	if len(visible(cmd.Flags)) > 0 {
		s += " [options]"
	}
	if cmd.ArgsUsage != "" {
		s += " " + cmd.ArgsUsage
	}
	return s
}

func helpSection(b *strings.Builder, title, body string) {
	b.WriteString(title + ":\n" + body + "\n\n")
}

// flagColumns lays out flags in two columns: spellings and usages.
func flagColumns(flags []cli.Flag) string {
	var rows [][2]string
	for _, f := range flags {
		doc := flagDocOf(f)
		rows = append(rows, [2]string{doc.spelling(), doc.text()})
	}
	return twoColumns(rows, 3, helpWidth)
}

// maxFirstColumn bounds the first column of twoColumns: a longer entry has
// its text start on the next line.
const maxFirstColumn = 26

// twoColumns lays out rows of a term and its text, each text wrapped within
// width in the column after the widest term (up to maxFirstColumn).
func twoColumns(rows [][2]string, indent, width int) string {
	first := 0
	for _, r := range rows {
		if n := len(r[0]); n <= maxFirstColumn && n > first {
			first = n
		}
	}
	col := indent + first + 2
	pad := strings.Repeat(" ", col)
	var lines []string
	for _, r := range rows {
		head := strings.Repeat(" ", indent) + r[0]
		text := wrapWords(r[1], width-col)
		if len(head)+2 > col || len(text) == 0 {
			lines = append(lines, head)
		} else {
			lines = append(lines, head+strings.Repeat(" ", col-len(head))+text[0])
			text = text[1:]
		}
		for _, t := range text {
			lines = append(lines, pad+t)
		}
	}
	return strings.Join(lines, "\n")
}

// exampleText lays out examples: the comment, then the command line.
func exampleText(ex []example) string {
	var parts []string
	for _, e := range ex {
		parts = append(parts, wrapText("# "+e.comment, 3, helpWidth)+"\n   "+e.line)
	}
	return strings.Join(parts, "\n\n")
}

// wrapText indents text and wraps each of its lines longer than width at
// spaces; a wrapped line goes on at its own indentation. Lines that fit
// are kept as written, so indented blocks (the rules' examples) stay.
func wrapText(text string, indent, width int) string {
	pad := strings.Repeat(" ", indent)
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " ")
		if line == "" {
			out = append(out, "")
			continue
		}
		lead := len(line) - len(strings.TrimLeft(line, " "))
		prefix := pad + line[:lead]
		for _, w := range wrapWords(line[lead:], width-len(prefix)) {
			out = append(out, prefix+w)
		}
	}
	return strings.Join(out, "\n")
}

// wrapWords breaks text into lines of at most width at spaces (a word
// longer than width gets a line of its own).
func wrapWords(text string, width int) []string {
	var lines []string
	var line strings.Builder
	for _, w := range strings.Fields(text) {
		if line.Len() > 0 && line.Len()+1+len(w) > width {
			lines = append(lines, line.String())
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
	}
	if line.Len() > 0 {
		lines = append(lines, line.String())
	}
	for i, l := range lines {
		if strings.Contains(l, "\x00") {
			lines[i] = strings.ReplaceAll(l, "\x00", " ")
		}
	}
	return lines
}

// templateLiteral makes text a text/template that prints it as is.
func templateLiteral(text string) string {
	return strings.ReplaceAll(text, "{{", `{{"{{"}}`)
}
