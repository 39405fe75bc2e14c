#!/usr/bin/env node
// The package's bin: runs the compiled CLI (`npm install` builds it).
import '../dist/src/cli/main.js';
