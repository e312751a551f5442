package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// closest returns the candidate nearest to word in spelling, "" when none
// is close (an edit distance of 4 or more): what "did you mean" offers.
// Ties go to the first in sorted order, so the answer does not depend on
// the order of candidates.
func closest(word string, candidates []string) string {
	best, bestDistance := "", 4
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		if d := editDistance(word, c); d < bestDistance {
			best, bestDistance = c, d
		}
	}
	return best
}

// flagNotDefined is how the flag package reports an unknown flag.
const flagNotDefined = "flag provided but not defined: "

// flagProblem words a flag error for people: the flag package's "flag
// provided but not defined: -movabel" reads "unknown flag --movabel".
func flagProblem(err error) string {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, flagNotDefined)
	if !ok {
		return msg
	}
	name = strings.TrimLeft(name, "-")
	if len(name) == 1 {
		return "unknown flag -" + name
	}
	return "unknown flag --" + name
}

// flagSuggestion answers urfave/cli's error for an unknown flag with the
// closest flag of flags, as the operator would type it: "; did you mean
// --dry-run?". Other errors get "".
func flagSuggestion(err error, flags []cli.Flag) string {
	msg := err.Error()
	i := strings.Index(msg, flagNotDefined)
	if i < 0 {
		return ""
	}
	given := strings.TrimLeft(strings.TrimSpace(msg[i+len(flagNotDefined):]), "-")
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	best := closest(given, names)
	if best == "" {
		return ""
	}
	if len(best) == 1 {
		return "; did you mean -" + best + "?"
	}
	return "; did you mean --" + best + "?"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
