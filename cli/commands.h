/* commands.h - the subcommands of fp4sim. Each takes its own argv (argv[0]
 * is the subcommand name) and returns the process exit status. */
#ifndef FP4SIM_CLI_COMMANDS_H
#define FP4SIM_CLI_COMMANDS_H

int cli_cmd_convert(int argc, char **argv);
int cli_cmd_table(int argc, char **argv);
int cli_cmd_sha256(int argc, char **argv);
int cli_cmd_formats(int argc, char **argv);
int cli_cmd_selfcheck(int argc, char **argv);
int cli_cmd_quantize(int argc, char **argv);
int cli_cmd_gemm(int argc, char **argv);
int cli_cmd_model(int argc, char **argv);
int cli_cmd_probe(int argc, char **argv);
int cli_cmd_engines(int argc, char **argv);

#endif
