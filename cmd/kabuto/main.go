// Command kabuto is Kabuto: account-takeover defence for online securities
// brokerages. See internal/cli for the commands.
package main

import (
	"os"

	"github.com/kabuto-sec/kabuto/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
