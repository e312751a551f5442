package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/irqshift/irqshift/affinity"
	"github.com/irqshift/irqshift/sysfs"
)

// jsonDocPath is the JSON contract's documentation.
const jsonDocPath = "docs/JSON.md"

var backticked = regexp.MustCompile("`([^`]+)`")

// TestJSONDocListsVocabularies: docs/JSON.md names exactly the values the
// JSON output can hold, as the code lists them: the sources of banned_by
// (affinity.BanSources), in their table, and the values of error_class
// (sysfs.WriteErrorClasses), in the sentence that gives them.
func TestJSONDocListsVocabularies(t *testing.T) {
	data, err := os.ReadFile(jsonDocPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")

	// The table after "The sources of `banned_by`": the first cell of each
	// row below its header.
	var sources []string
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "The sources of `banned_by`") })
	if start < 0 {
		t.Fatalf("%s: no \"The sources of `banned_by`\" table", jsonDocPath)
	}
	inTable := false
	for _, l := range lines[start+1:] {
		if !strings.HasPrefix(l, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cell := strings.TrimSpace(strings.SplitN(strings.TrimPrefix(l, "|"), "|", 2)[0])
		if m := backticked.FindStringSubmatch(cell); m != nil && m[0] == cell {
			sources = append(sources, m[1])
		}
	}
	want := make([]string, len(affinity.BanSources))
	for i, s := range affinity.BanSources {
		want[i] = string(s)
	}
	if !slices.Equal(sources, want) {
		t.Errorf("%s lists the banned_by sources %q, want affinity.BanSources %q", jsonDocPath, sources, want)
	}

	// The paragraph "`error_class` is `a`, `b` … or `z`.".
	text := string(data)
	i := strings.Index(text, "`error_class` is ")
	if i < 0 {
		t.Fatalf("%s: no \"`error_class` is\" sentence", jsonDocPath)
	}
	paragraph, _, _ := strings.Cut(text[i+len("`error_class` is "):], ".")
	var classes []string
	for _, m := range backticked.FindAllStringSubmatch(paragraph, -1) {
		classes = append(classes, m[1])
	}
	var wantClasses []string
	for _, c := range sysfs.WriteErrorClasses {
		wantClasses = append(wantClasses, string(c))
	}
	slices.Sort(classes)
	slices.Sort(wantClasses)
	if !slices.Equal(classes, wantClasses) {
		t.Errorf("%s gives error_class the values %q, want sysfs.WriteErrorClasses %q", jsonDocPath, classes, wantClasses)
	}
}
