package state

// loadState and saveState are one Load or Save on a fresh Store, without
// the lock: what a test of the file format needs.
func loadState(path string) (Saved, error) {
	st, err := OpenStore(path)
	if err != nil {
		return NewSaved(), err
	}
	return st.Load()
}

func saveState(path string, s Saved) error {
	st, err := OpenStore(path)
	if err != nil {
		return err
	}
	return st.Save(s)
}
