//go:build !race

package e2e

// raceEnabled is false: the kbox binary is built without -race.
const raceEnabled = false
