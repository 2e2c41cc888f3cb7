//go:build !linux

package scaler

import "syscall"

// workerSysProcAttr is empty where there is no parent-death signal: there a
// worker started by a scaler that was killed outright keeps running.
func workerSysProcAttr() *syscall.SysProcAttr { return nil }
