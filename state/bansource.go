package state

// BanSource names where a banned CPU comes from, as DaemonBannedBy records
// it. Package affinity gives the sources their meaning and lists them
// (affinity.BanSources).
type BanSource string
