//go:build !race

package pool

// raceFactor scales the kernel's memory allowance; see race.go.
const raceFactor = 1
