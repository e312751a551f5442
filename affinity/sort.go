package affinity

import "slices"

func sortByIRQ[T any](items []T, irq func(T) int) {
	slices.SortStableFunc(items, func(a, b T) int { return irq(a) - irq(b) })
}
