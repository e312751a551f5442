package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
	"github.com/irqshift/irqshift/top"
)

// Shell completion. The scripts of `irqshift completion bash|zsh|fish` are
// small shell functions: for the word under the cursor they run irqshift
// with the words before it and --generate-bash-completion (urfave/cli's
// flag, which runs no command: a BashComplete function below prints the
// candidates instead), and keep the flags or the other words as the word
// begins with "-" or not. What a flag's value can be is in the script
// itself (flagCompletions), so that after --proc the shell lists
// directories and after --banned-cpus nothing: no file names where irqshift
// wants CPUs, IRQs or durations.

// completionShells are the shells `irqshift completion` writes for.
var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand(app *cli.App) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script of bash, zsh or fish",
		ArgsUsage: strings.Join(completionShells, "|"),
		Description: `The script completes commands, flags, flag values (directories after
--proc, the modes after --numa), online CPUs after drain and offline,
offline CPUs after online, and IRQ numbers after pin and unpin. The
Debian package installs the three; with "make install" they go to
PREFIX/share. To try one in the running shell:

   source <(irqshift completion bash)`,
		OnUsageError: app.OnUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("completion: name one shell: %s", strings.Join(completionShells, ", "))
			}
			var script string
			switch c.Args().First() {
			case "bash":
				script = bashCompletion(c.App)
			case "zsh":
				script = zshCompletion(c.App)
			case "fish":
				script = fishCompletion(c.App)
			default:
				return usageError("completion: %q is not a shell irqshift completes (%s)", c.Args().First(), strings.Join(completionShells, ", "))
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// argKind is what a command's arguments are, for completion.
type argKind int

const (
	argNone        argKind = iota
	argOnlineCPUs          // CPU numbers, of the online CPUs
	argOfflineCPUs         // CPU numbers, of the offline CPUs
	argIRQs                // IRQ numbers
	argIRQ                 // one IRQ number
	argIRQThenCPUs         // an IRQ, then online CPUs (pin)
	argShell               // a shell (completion)
)

// commandArgs are the arguments each command completes. Only a command
// that takes arguments (its ArgsUsage says which) gets them: list's IRQ
// numbers appear with list's arguments.
var commandArgs = map[string]argKind{
	"list":       argIRQs,
	"drain":      argOnlineCPUs,
	"undrain":    argOnlineCPUs,
	"offline":    argOnlineCPUs,
	"online":     argOfflineCPUs,
	"pin":        argIRQThenCPUs,
	"unpin":      argIRQ,
	"completion": argShell,
}

// setUpCompletion turns --generate-bash-completion on and gives the app
// and every command their candidates.
func setUpCompletion(app *cli.App) {
	app.EnableBashCompletion = true
	app.BashComplete = func(c *cli.Context) {
		var words []string
		for _, f := range visible(appFlags(c.App)) {
			words = append(words, dashedNames(f)...)
		}
		for _, cmd := range c.App.VisibleCommands() {
			words = append(words, cmd.Names()...)
		}
		printWords(c, words)
	}
	for _, cmd := range app.Commands {
		if cmd.BashComplete == nil {
			cmd.BashComplete = commandCompleter(commandArgs[cmd.Name])
		}
	}
}

// commandCompleter prints a command's flags and the arguments it can take
// next.
func commandCompleter(kind argKind) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		var words []string
		for _, f := range visible(commandFlags(c.App, c.Command)) {
			words = append(words, dashedNames(f)...)
		}
		if c.Command.ArgsUsage != "" {
			words = append(words, argCandidates(c, kind)...)
		}
		printWords(c, words)
	}
}

func printWords(c *cli.Context, words []string) {
	if len(words) > 0 {
		fmt.Fprintln(c.App.Writer, strings.Join(words, "\n"))
	}
}

func dashedNames(f cli.Flag) []string {
	var out []string
	for _, name := range f.Names() {
		out = append(out, dashed(name))
	}
	return out
}

// argCandidates are the arguments a command can take after those given:
// CPU and IRQ numbers as the kernel lists them (under --proc and --sys),
// without those already given.
func argCandidates(c *cli.Context, kind argKind) []string {
	given := c.Args().Slice()
	switch kind {
	case argOnlineCPUs:
		return cpuCandidates(c, "online", given)
	case argOfflineCPUs:
		return cpuCandidates(c, "offline", given)
	case argIRQs:
		return irqCandidates(c, given)
	case argIRQ:
		if len(given) == 0 {
			return irqCandidates(c, nil)
		}
	case argIRQThenCPUs:
		switch len(given) {
		case 0:
			return irqCandidates(c, nil)
		case 1:
			return cpuCandidates(c, "online", nil)
		}
	case argShell:
		if len(given) == 0 {
			return completionShells
		}
	}
	return nil
}

// cpuCandidates lists the CPUs of /sys/devices/system/cpu/<list> not in
// the CPU lists given.
func cpuCandidates(c *cli.Context, list string, given []string) []string {
	data, err := os.ReadFile(filepath.Join(rootOr(c.String("sys"), "/sys"), sysfs.CPUDir, list))
	if err != nil {
		return nil
	}
	set, err := sysfs.ParseCPUList(strings.TrimSpace(string(data)))
	if err != nil {
		return nil
	}
	taken := map[int]bool{}
	for _, arg := range given {
		if s, err := sysfs.ParseCPUList(arg); err == nil {
			for _, cpu := range s.CPUs() {
				taken[cpu] = true
			}
		}
	}
	var out []string
	for _, cpu := range set.CPUs() {
		if !taken[cpu] {
			out = append(out, strconv.Itoa(cpu))
		}
	}
	return out
}

// irqCandidates lists the IRQ numbers of /proc/irq not given already.
func irqCandidates(c *cli.Context, given []string) []string {
	entries, err := os.ReadDir(filepath.Join(rootOr(c.String("proc"), "/proc"), "irq"))
	if err != nil {
		return nil
	}
	var irqs []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && !slices.Contains(given, e.Name()) {
			irqs = append(irqs, n)
		}
	}
	slices.Sort(irqs)
	out := make([]string, len(irqs))
	for i, n := range irqs {
		out[i] = strconv.Itoa(n)
	}
	return out
}

func rootOr(value, def string) string {
	if value == "" {
		return def
	}
	return value
}

// Value completions of flagCompletions that are not words.
const (
	completeDirs  = "<dirs>"
	completeFiles = "<files>"
)

// flagCompletions say what the shells offer as the value of a flag: a
// directory, a file, or the words given. A flag that takes a value and is
// missing here gets nothing (CPU lists, IRQs, durations, addresses).
var flagCompletions = map[string]string{
	"proc":       completeDirs,
	"sys":        completeDirs,
	"rules":      completeDirs,
	"config":     completeFiles,
	"state":      completeFiles,
	"ban-file":   completeFiles,
	"numa":       "local ignore",
	"balance":    "load count",
	"learn-pins": "true false",
	"log-level":  "debug info warn error",
	"sort":       sortKeyWords(),
	"class": strings.Join([]string{string(affinity.ClassMovable), string(affinity.ClassPerCPU), string(affinity.ClassManaged),
		string(affinity.ClassNoAction), string(affinity.ClassBanned), string(affinity.ClassIgnored)}, " "),
}

func sortKeyWords() string {
	var keys []string
	for _, k := range top.SortKeys {
		keys = append(keys, string(k))
	}
	return strings.Join(keys, " ")
}

// valueFlagGroup is the flags whose values complete alike, as spelled.
type valueFlagGroup struct {
	values   string // flagCompletions' value; "" for nothing
	spelling []string
}

// valueFlags groups every flag of the app that takes a value (global, and
// of the visible commands) by what its value completes to, in the order
// first seen.
func valueFlags(app *cli.App) []valueFlagGroup {
	var groups []valueFlagGroup
	seen := map[string]bool{}
	add := func(flags []cli.Flag) {
		for _, f := range visible(flags) {
			if !takesValue(f) || seen[f.Names()[0]] {
				continue
			}
			seen[f.Names()[0]] = true
			values := flagCompletions[f.Names()[0]]
			i := slices.IndexFunc(groups, func(g valueFlagGroup) bool { return g.values == values })
			if i < 0 {
				groups = append(groups, valueFlagGroup{values: values})
				i = len(groups) - 1
			}
			groups[i].spelling = append(groups[i].spelling, dashedNames(f)...)
		}
	}
	add(appFlags(app))
	for _, cmd := range app.VisibleCommands() {
		add(cmd.Flags)
	}
	return groups
}

// shellName makes a name fit in a shell function name.
func shellName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

const completionHow = `# Commands, flags, CPUs and IRQs come from PROG itself, run with the words
# before the cursor and --generate-bash-completion, which prints the
# candidates and runs no command. It is not run after "--".
`

func bashCompletion(app *cli.App) string {
	var cases strings.Builder
	for _, g := range valueFlags(app) {
		fmt.Fprintf(&cases, "\t%s)\n", strings.Join(g.spelling, "|"))
		switch g.values {
		case completeDirs:
			cases.WriteString("\t\tcompopt -o filenames 2>/dev/null\n\t\tmapfile -t COMPREPLY < <(compgen -d -- \"$cur\")\n")
		case completeFiles:
			cases.WriteString("\t\tcompopt -o filenames 2>/dev/null\n\t\tmapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n")
		case "":
			cases.WriteString("\t\t# a value no list holds: offer nothing\n")
		default:
			fmt.Fprintf(&cases, "\t\tmapfile -t COMPREPLY < <(compgen -W '%s' -- \"$cur\")\n", g.values)
		}
		cases.WriteString("\t\treturn 0 ;;\n")
	}
	return strings.NewReplacer("PROG", app.Name, "FUNC", "_"+shellName(app.Name), "CASES\n", cases.String()).Replace(`# bash completion for PROG, printed by "PROG completion bash".
# The Debian package installs it as
# /usr/share/bash-completion/completions/PROG; to try it in a shell:
#   source <(PROG completion bash)
#
` + completionHow + `
FUNC() {
	local line=${COMP_LINE:0:COMP_POINT} cur prev prog w
	local -a words cands
	COMPREPLY=()
	read -r -a words <<<"$line"
	if [[ -z $line || $line == *[[:space:]] ]]; then
		cur=
	else
		cur=${words[${#words[@]}-1]}
		words=("${words[@]:0:${#words[@]}-1}")
	fi
	((${#words[@]} > 0)) || return 0
	prev=${words[${#words[@]}-1]}
	if [[ $cur == --*=* ]]; then
		prev=${cur%%=*}
		cur=${cur#*=}
	fi
	for w in "${words[@]:1}"; do
		[[ $w != -- ]] || return 0
	done
	case $prev in
CASES
	esac
	prog=${words[0]}
	[[ $prog != '~/'* ]] || prog=$HOME/${prog:2}
	mapfile -t cands < <("$prog" "${words[@]:1}" --generate-bash-completion 2>/dev/null)
	for w in "${cands[@]}"; do
		if [[ $cur == -* ]]; then
			[[ $w == -* ]] || continue
		elif [[ $w == -* ]]; then
			continue
		fi
		[[ $w != "$cur"* ]] || COMPREPLY+=("$w")
	done
	return 0
}

complete -F FUNC PROG
`)
}

func zshCompletion(app *cli.App) string {
	var cases strings.Builder
	for _, g := range valueFlags(app) {
		fmt.Fprintf(&cases, "\t(%s)\n", strings.Join(g.spelling, "|"))
		switch g.values {
		case completeDirs:
			cases.WriteString("\t\t_files -/\n\t\treturn ;;\n")
		case completeFiles:
			cases.WriteString("\t\t_files\n\t\treturn ;;\n")
		case "":
			cases.WriteString("\t\t# a value no list holds: offer nothing\n\t\treturn 1 ;;\n")
		default:
			fmt.Fprintf(&cases, "\t\tcompadd -- %s\n\t\treturn ;;\n", g.values)
		}
	}
	return strings.NewReplacer("PROG", app.Name, "FUNC", "_"+shellName(app.Name), "CASES\n", cases.String()).Replace(`#compdef PROG
# zsh completion for PROG, printed by "PROG completion zsh". The Debian
# package installs it as /usr/share/zsh/vendor-completions/_PROG;
# elsewhere, save it as _PROG in a directory of $fpath.
#
` + completionHow + `
FUNC() {
	local cur=${words[CURRENT]} prev=${words[CURRENT-1]} prog
	local -a before args cands
	if [[ $cur == --*=* ]]; then
		prev=${cur%%=*}
		compset -P '*='
		cur=${cur#*=}
	fi
	before=("${(@)words[1,CURRENT-1]}")
	((${before[(I)--]} == 0)) || return 1
	case $prev in
CASES
	esac
	prog=${(Q)words[1]}
	[[ $prog != '~/'* ]] || prog=$HOME/${prog:2}
	args=("${(@Q)words[2,CURRENT-1]}")
	cands=("${(@f)$("$prog" "${args[@]}" --generate-bash-completion 2>/dev/null)}")
	if [[ $cur == -* ]]; then
		cands=(${(M)cands:#-*})
	else
		cands=(${cands:#-*})
	fi
	((${#cands} > 0)) || return 1
	compadd -a cands
}

if [[ ${funcstack[1]} == FUNC ]]; then
	FUNC "$@"
else
	compdef FUNC PROG
fi
`)
}

func fishCompletion(app *cli.App) string {
	var b strings.Builder
	name := app.Name
	fn := "__" + shellName(name)
	var commands []string
	for _, cmd := range app.VisibleCommands() {
		commands = append(commands, cmd.Names()...)
	}
	b.WriteString(strings.NewReplacer("PROG", name, "FUNC", fn, "COMMANDS", strings.Join(commands, " ")).Replace(`# fish completion for PROG, printed by "PROG completion fish". The Debian
# package installs it as /usr/share/fish/vendor_completions.d/PROG.fish;
# elsewhere: PROG completion fish > ~/.config/fish/completions/PROG.fish
#
` + completionHow + `
function FUNC_has_command --description 'Test whether the PROG command line names a command'
    set -l tokens (commandline -opc)
    set -e tokens[1]
    for t in $tokens
        if contains -- $t COMMANDS
            return 0
        end
    end
    return 1
end

function FUNC_args --description 'Print the arguments PROG takes at the cursor'
    set -l tokens (commandline -opc)
    set -l prog (string replace -r '^~/' "$HOME/" -- $tokens[1])
    set -e tokens[1]
    contains -- -- $tokens; and return
    $prog $tokens --generate-bash-completion 2>/dev/null | string match -v -- '-*'
end

complete -c PROG -f
`))
	for _, cmd := range app.VisibleCommands() {
		fmt.Fprintf(&b, "complete -c %s -n 'not %s_has_command' -a %s -d %s\n", name, fn, fishQuote(strings.Join(cmd.Names(), " ")), fishQuote(shortUsage(cmd.Usage)))
	}
	fishFlags(&b, name, "not "+fn+"_has_command", visible(appFlags(app)))
	for _, cmd := range app.VisibleCommands() {
		fishFlags(&b, name, "__fish_seen_subcommand_from "+strings.Join(cmd.Names(), " "), visible(commandFlags(app, cmd)))
	}
	fmt.Fprintf(&b, "complete -c %s -n %s_has_command -a '(%s_args)'\n", name, fn, fn)
	return b.String()
}

func fishFlags(b *strings.Builder, prog, condition string, flags []cli.Flag) {
	for _, f := range flags {
		fmt.Fprintf(b, "complete -c %s -n %s", prog, fishQuote(condition))
		for _, n := range f.Names() {
			if len(n) == 1 {
				fmt.Fprintf(b, " -s %s", n)
			} else {
				fmt.Fprintf(b, " -l %s", n)
			}
		}
		if takesValue(f) {
			switch values := flagCompletions[f.Names()[0]]; values {
			case completeDirs:
				b.WriteString(" -x -a '(__fish_complete_directories)'")
			case completeFiles:
				b.WriteString(" -r -F")
			case "":
				b.WriteString(" -x")
			default:
				b.WriteString(" -x -a " + fishQuote(values))
			}
		}
		fmt.Fprintf(b, " -d %s\n", fishQuote(shortUsage(flagDocOf(f).usage)))
	}
}

// shortUsage is a usage up to its first semicolon, colon or parenthesis
// where that leaves a few words: a description in fish's list.
func shortUsage(usage string) string {
	for _, sep := range []string{"; ", ": ", " ("} {
		if i := strings.Index(usage, sep); i >= 20 {
			usage = usage[:i]
		}
	}
	return strings.TrimSpace(usage)
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
