package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/irqshift/irqshift/internal/regfile"
)

// Load reads the rules of every *.toml file in dir, in name order.
// Other names are ignored, and so are subdirectories and names starting
// with '.': editors leave lock and backup files there (emacs's .#x.toml is
// a dangling link), and AddPin's temporary file is one. A missing dir is
// an empty Set, since the default directory need not exist; a dir that is
// not a directory, a *.toml that is not a regular file once links are
// followed (a FIFO is refused without being opened), one larger than
// MaxFileSize, a bad rule, or a name used twice in the directory are
// errors wrapping ErrRules.
func Load(dir string) (*Set, error) {
	return load(dir, "", nil)
}

// load is Load with the file named override read as overrideData instead
// of from dir, whether it exists there or not: AddPin checks that the
// directory will load before it writes.
func load(dir, override string, overrideData []byte) (*Set, error) {
	set := &Set{Dir: dir}
	var names []string
	switch info, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fileError(dir, err)
	case !info.IsDir():
		return nil, &Error{File: dir, Text: "is not a directory (the rules directory holds *.toml files)"}
	default:
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fileError(dir, err)
		}
		for _, e := range entries {
			// A directory itself is skipped; a link to one is named like a
			// rules file and refused as not a regular file below.
			if !e.IsDir() && isRulesName(e.Name()) {
				names = append(names, e.Name())
			}
		}
	}
	if override != "" && !slices.Contains(names, override) {
		names = append(names, override)
		slices.Sort(names)
	}

	// where maps each name to the rule that has it, for the message about
	// a second one.
	where := map[string]*Rule{}
	for _, name := range names {
		path := filepath.Join(dir, name)
		data := overrideData
		if name != override {
			var err error
			data, err = readRulesFile(path)
			if errors.Is(err, errGone) {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		rules, err := Parse(path, data)
		if err != nil {
			return nil, err
		}
		for i := range rules {
			r := &rules[i]
			if first, ok := where[r.Name]; ok {
				return nil, &Error{File: r.File, Line: r.Line, Text: fmt.Sprintf("rule %q: name already used by the rule at %s:%d", r.Name, first.File, first.Line)}
			}
			where[r.Name] = r
		}
		set.Rules = append(set.Rules, rules...)
	}
	return set, nil
}

func isRulesName(name string) bool {
	return strings.HasSuffix(name, ".toml") && !strings.HasPrefix(name, ".")
}

// errGone means a file listed in the directory was removed before it was
// read: a RemovePin at the same time, say. It was not there to read.
var errGone = errors.New("removed while the directory was read")

// readRulesFile reads one rules file, bounded, refusing without blocking
// anything that is not a regular file.
func readRulesFile(path string) ([]byte, error) {
	data, err := regfile.Read(path, MaxFileSize)
	if err == nil {
		return data, nil
	}
	var notRegular *regfile.NotRegularError
	switch {
	case errors.As(err, &notRegular):
		if notRegular.Target != "" {
			return nil, &Error{File: path, Text: fmt.Sprintf("is a symbolic link to %s, %s, not a regular file", notRegular.Target, notRegular.Kind)}
		}
		return nil, &Error{File: path, Text: fmt.Sprintf("is %s, not a regular file", notRegular.Kind)}
	case errors.Is(err, regfile.ErrTooLarge):
		return nil, &Error{File: path, Text: fmt.Sprintf("is larger than %d bytes, the most a rules file may hold", MaxFileSize), Err: regfile.ErrTooLarge}
	case errors.Is(err, fs.ErrNotExist):
		if target, linkErr := os.Readlink(path); linkErr == nil {
			return nil, &Error{File: path, Text: fmt.Sprintf("is a symbolic link to %s, which does not exist", target), Err: err}
		}
		if _, lstatErr := os.Lstat(path); errors.Is(lstatErr, fs.ErrNotExist) {
			return nil, errGone
		}
	}
	return nil, fileError(path, err)
}

// fileError is an error of the file system about path, in an Error that
// names path once.
func fileError(path string, err error) error {
	text := err.Error()
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		text = pathErr.Op + ": " + pathErr.Err.Error()
	}
	return &Error{File: path, Text: text, Err: err}
}
