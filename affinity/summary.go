package affinity

// Summary counts the outcomes of an apply. The JSON documents, the tables
// and the daemon's log and metrics all print this one count.
type Summary struct {
	Planned   int `json:"planned"`
	Done      int `json:"done"`
	NotDone   int `json:"not_done"`
	Moved     int `json:"moved"`
	Narrowed  int `json:"narrowed"`
	Pending   int `json:"pending"`
	Failed    int `json:"failed"`
	Unmovable int `json:"unmovable"`
	Vanished  int `json:"vanished"`
}

// Summarize counts results: planned writes were planned, notDone of them
// were not attempted (an interruption).
func Summarize(planned int, results []Result, notDone int) Summary {
	s := Summary{Planned: planned, NotDone: notDone}
	for _, r := range results {
		if r.Wrote() {
			s.Done++
		}
		switch r.Status {
		case StatusMoved:
			s.Moved++
		case StatusNarrowed:
			s.Narrowed++
		case StatusPending:
			s.Pending++
		case StatusFailed:
			s.Failed++
		case StatusUnmovable:
			s.Unmovable++
		case StatusVanished:
			s.Vanished++
		}
	}
	return s
}
