# tests/cli.cmake - the fp4sim command line, tested by running the real
# binary (tests/cli/run_fp4sim.cmake checks its output). Expected codes are
# the measured tables of numerics.md §2.9, not fp4sim's own output.
set(FP4_CLI_RUN ${CMAKE_CURRENT_SOURCE_DIR}/cli/run_fp4sim.cmake)

# fp4_cli_test(NAME MODE [LABELS l] [ARGS a...] [ARGS2 a...] [CHECKS c...]
#              [REGEX r] [FIELD f] [EXPECT_RC n] [TIMEOUT s])
# One CTest case "cli_NAME"; MODE and the rest as in run_fp4sim.cmake.
function(fp4_cli_test name mode)
  cmake_parse_arguments(T "" "REGEX;FIELD;EXPECT_RC;LABELS;TIMEOUT" "ARGS;ARGS2;CHECKS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  list(JOIN T_ARGS "~" args)
  list(JOIN T_ARGS2 "~" args2)
  list(JOIN T_CHECKS "~" checks)
  set(defs -DFP4SIM=$<TARGET_FILE:fp4sim> -DMODE=${mode} "-DARGS=${args}")
  foreach(opt ARGS2 CHECKS REGEX FIELD EXPECT_RC)
    if(DEFINED T_${opt})
      if(opt STREQUAL "ARGS2")
        list(APPEND defs "-DARGS2=${args2}")
      elseif(opt STREQUAL "CHECKS")
        list(APPEND defs "-DCHECKS=${checks}")
      else()
        list(APPEND defs "-D${opt}=${T_${opt}}")
      endif()
    endif()
  endforeach()
  add_test(NAME cli_${name} COMMAND ${CMAKE_COMMAND} ${defs} -P ${FP4_CLI_RUN})
  set_tests_properties(cli_${name} PROPERTIES LABELS "${T_LABELS}")
  if(T_TIMEOUT)
    set_tests_properties(cli_${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  endif()
endfunction()

# fp4_cli_codes(NAME FORMAT POLICY INPUT=CODE...): one `convert --json` run
# rounding every INPUT into FORMAT under POLICY, each code checked.
function(fp4_cli_codes name fmt policy)
  set(values "")
  set(checks "")
  set(i 0)
  foreach(pair IN LISTS ARGN)
    string(REGEX MATCH "^([^=]+)=(.+)$" m "${pair}")
    list(APPEND values "${CMAKE_MATCH_1}")
    list(APPEND checks "${i}.code=${CMAKE_MATCH_2}")
    math(EXPR i "${i} + 1")
  endforeach()
  fp4_cli_test(${name} json ARGS convert --json --to ${fmt} --policy ${policy} ${values}
               CHECKS "#=${i}" ${checks})
endfunction()

# ---------------------------------------------------------------------------
# (a) help and version
# ---------------------------------------------------------------------------
fp4_cli_test(help text ARGS --help REGEX "usage: fp4sim .*convert.*selfcheck")
fp4_cli_test(version text ARGS --version
             REGEX "^fp4sim 0\\.1\\.0\nCUDA kernels built: (yes|no); SIMD: (avx512|avx2|portable)\n$")
fp4_cli_test(version_json json ARGS --version --json CHECKS version=0.1.0)
foreach(cmd convert table sha256 formats selfcheck)
  fp4_cli_test(help_${cmd} text ARGS ${cmd} --help REGEX "^usage: fp4sim ${cmd}")
endforeach()

# ---------------------------------------------------------------------------
# (b) convert: codes from numerics.md §2.9 and §2.1
# ---------------------------------------------------------------------------
fp4_cli_codes(e2m1_ties e2m1 satfinite
              0.25=0x0 0.25000003=0x1 -0.25=0x8 0.75=0x2 1.25=0x2 1.75=0x4 2.5=0x4 3.5=0x6
              5.0=0x6 5.0000005=0x7 6.5=0x7 7=0x7 100=0x7 -0.1=0x8)
fp4_cli_codes(e2m1_satfinite e2m1 satfinite -0=0x8 inf=0x7 -inf=0xf nan=0x7 -nan=0x7)
fp4_cli_codes(e2m1_ml_dtypes e2m1 ml_dtypes -0=0x8 inf=0x7 -inf=0xf nan=0x8 -nan=0x0)
fp4_cli_codes(e2m1_modelopt e2m1 modelopt -0=0x0 -0.1=0x8 inf=0x7 -inf=0xf nan=0x7 -nan=0x7)
fp4_cli_codes(e2m1_cutlass e2m1 cutlass-host -0=0x8 nan=0x7 -nan=0xf)
fp4_cli_codes(e4m3_satfinite e4m3 satfinite
              448=0x7e 449=0x7e 463.99997=0x7e 464=0x7e 464.00003=0x7e 480=0x7e 1e30=0x7e
              inf=0x7e -inf=0xfe nan=0x7f -nan=0x7f -0=0x80
              0x1p-9=0x01 0x1.8p-10=0x01 0x1p-10=0x00 0x1.000002p-10=0x01 0x1p-11=0x00 1e-30=0x00)
fp4_cli_codes(e4m3_nosat e4m3 nosat
              464=0x7e 464.00003=0x7f 480=0x7f 500=0x7f inf=0x7f -inf=0xff nan=0x7f -nan=0xff)
fp4_cli_codes(e4m3_ml_dtypes e4m3 ml_dtypes 464.00003=0x7f -inf=0xff -nan=0xff -0=0x80)
fp4_cli_codes(e4m3_cutlass e4m3 cutlass-host 464.00003=0x7e inf=0x7e -inf=0xfe -nan=0x7f)

# The full record of one conversion (the 2^-10 tie rounds down to +0).
fp4_cli_test(convert_record json ARGS convert --json --to e4m3 0x1p-10
             CHECKS 0.input=0x1p-10 0.format=e4m3 0.code=0x00 0.bits=0|0000|000 0.value=0
                    0.sig_exp=0 "0.ternary=rounded down" 0.ternary_value=-1
                    0.flags=inexact,underflow 0.round=rne 0.policy=satfinite)
fp4_cli_test(convert_overflow_flags json ARGS convert --json --to e2m1 7
             CHECKS 0.code=0x7 "0.ternary=rounded down" 0.flags=inexact,overflow,saturated)
fp4_cli_test(convert_default_targets json ARGS convert --json 1.5
             CHECKS "#=10" 0.format=e2m1 0.code=0x3 3.format=e4m3 3.code=0x3c 6.format=ue8m0
                    9.format=f32 9.code=0x3fc00000)
fp4_cli_test(convert_all_targets json ARGS convert --json --to all 1 CHECKS "#=11" 10.format=f64
             10.code=0x3ff0000000000000)
fp4_cli_test(convert_alias json ARGS convert --json --to fp4,float8_e4m3fn 1
             CHECKS 0.format=e2m1 1.format=e4m3)

# Decimal parsing is exact: no detour through double.
fp4_cli_test(parse_decimal_f32 json
             ARGS convert --json --to f32 0.1 1e-45 1e-40 123456789012345678901234567890
             CHECKS 0.code=0x3dcccccd "0.ternary=rounded up" 1.code=0x00000001
                    1.flags=inexact,underflow 2.code=0x000116c2 3.code=0x6fc77488)
fp4_cli_test(parse_decimal_ties json ARGS convert --json --to e2m1
             0.2500000000000000000000000000000000000001
             0.7499999999999999999999999999999999999999
             5.000000000000000000000000000000000000001
             -2.500000000000000000000000000000000000001
             CHECKS 0.code=0x1 "0.ternary=rounded up" 1.code=0x1 2.code=0x7 3.code=0xd)
fp4_cli_test(parse_hex_float json ARGS convert --json --to e4m3,f32 0x1.8p-3 -0X1P+0
             CHECKS 0.code=0x24 1.code=0x3e400000 2.code=0xb8 3.code=0xbf800000)
fp4_cli_test(parse_huge json ARGS convert --json --to e4m3 --policy nosat
             1e999999999999 -1e-999999999999
             CHECKS 0.code=0x7f 0.flags=inexact,overflow 1.code=0x80)

# Codes as input (--from), options.
fp4_cli_test(convert_from_code json ARGS convert --json --from e4m3 --to f32,e2m1 0x7e 254
             CHECKS 0.from=e4m3 0.code=0x43e00000 0.value=448 1.code=0x7 2.code=0xc3e00000)
fp4_cli_test(convert_from_e2m1 json ARGS convert --json --from e2m1 --to e4m3 0xf 9
             CHECKS 0.code=0xcc 1.code=0xb0)
fp4_cli_test(convert_daz json ARGS convert --json --from e4m3 --daz --to f32 0x01
             CHECKS 0.code=0x00000000 0.flags=flushed)
fp4_cli_test(convert_ftz json ARGS convert --json --ftz --to e4m3 0x1p-9
             CHECKS 0.code=0x00 0.flags=inexact,underflow,flushed)
# Signaling NaN -> invalid; quiet NaN -> nothing, except into e2m1 (no NaN).
fp4_cli_test(convert_nan_flags json
             ARGS convert --json --from f32 --to e4m3,e2m1 0x7f800001 0x7fc00000
             CHECKS 0.flags=invalid 1.flags=invalid 2.code=0x7f "2.flags.#=0" 3.flags=invalid)
# Tininess: e2m1 0.875 rounds to 1.0 = 2^emin; at 2 bits it ties up to 1.0,
# so it is tiny only before rounding (docs/formats.md, "Tininess").
fp4_cli_test(convert_tininess json ARGS convert --json --to e2m1 0.875
             CHECKS 0.code=0x2 0.flags=inexact,underflow)
fp4_cli_test(convert_tininess_after json ARGS convert --json --tininess-after --to e2m1 0.875
             CHECKS 0.code=0x2 0.flags=inexact)
fp4_cli_test(convert_relu json ARGS convert --json --relu --to e4m3 -1 CHECKS 0.code=0x00)
fp4_cli_test(convert_round_modes json ARGS convert --json --to e2m1 --round rz 1.9
             CHECKS 0.code=0x3 0.round=rz)
# 1.25 is half-way between 1 and 1.5: the 8 discarded bits are 0x80, so .rs
# rounds up exactly when rbits >= 0x80.
fp4_cli_test(convert_rs_down json ARGS convert --json --to e2m1 --round rs --rbits 0x7f 1.25
             CHECKS 0.code=0x2)
fp4_cli_test(convert_rs_up json ARGS convert --json --to e2m1 --round rs --rbits 0x80 1.25
             CHECKS 0.code=0x3)
fp4_cli_test(convert_text text ARGS convert --to e2m1 5
             REGEX "input 5\n +format +code +bits.*\n +e2m1 +0x6 +0\\|11\\|0 +4 +1\\*2\\^2 +rounded down +inexact\n")

# ---------------------------------------------------------------------------
# (c) table, formats, selfcheck
# ---------------------------------------------------------------------------
fp4_cli_test(table_e2m1 json ARGS table e2m1 --json
             CHECKS "#=16" 0.value=0 1.value=0.5 2.value=1 3.value=1.5 4.value=2 5.value=3
                    6.value=4 7.value=6 8.value=-0 9.value=-0.5 10.value=-1 11.value=-1.5
                    12.value=-2 13.value=-3 14.value=-4 15.value=-6 5.bits=0|10|1
                    1.class=subnormal 15.code=0xf 15.sig_exp=-3*2^1)
fp4_cli_test(table_e4m3 json ARGS table e4m3 --json
             CHECKS "#=256" 1.value=0.001953125 126.value=448 127.class=nan 128.value=-0)
fp4_cli_test(table_ue4m3 json ARGS table ue4m3 --json CHECKS "#=128" 127.class=nan 126.bits=1111|110)
fp4_cli_test(table_ue8m0 json ARGS table ue8m0 --json CHECKS "#=256" 127.value=1 254.sig_exp=1*2^127 255.class=nan)
fp4_cli_test(table_text text ARGS table e2m1 REGEX "0x5 +0\\|10\\|1 +normal +3 +3\\*2\\^0\n")
fp4_cli_test(formats json ARGS formats --json
             CHECKS "formats.#=11" formats.3.name=e4m3 formats.3.max=448 formats.3.min_subnormal_pow2=2^-9
                    formats.0.nan=none formats.5.has_inf=ON "rounding_modes.#=6" "policies.#=5"
                    policies.4.name=modelopt)
fp4_cli_test(formats_text text ARGS formats REGEX "e4m3 +8 +1/4/3 +7 +448")
fp4_cli_test(selfcheck text ARGS selfcheck REGEX "\nselfcheck: [0-9]+ checks passed\n$")
fp4_cli_test(selfcheck_json json ARGS selfcheck --json --random 65536 CHECKS failures=0 "groups.#=4"
             e2m1_values.7=6)

# ---------------------------------------------------------------------------
# (d) bad arguments: exit 2, one "fp4sim: ..." line on stderr
# ---------------------------------------------------------------------------
set(bad_unknown_command bogus)
set(bad_no_command "")
set(bad_unknown_format convert --to e9m9 1)
set(bad_unknown_from convert --from e9m9 0x1)
set(bad_unknown_mode convert --round nearest-even 1)
set(bad_unknown_policy convert --policy torchy 1)
set(bad_unknown_option convert --frobnicate 1)
set(bad_malformed_dots convert 1.2.3)
set(bad_malformed_hex convert 0x1.8q3)
set(bad_malformed_exp convert 1e)
set(bad_malformed_word convert pi)
set(bad_code_range convert --from e2m1 0x10)
set(bad_code_range_dec convert --from ue4m3 128)
set(bad_code_malformed convert --from e4m3 1.5)
set(bad_code_overflow convert --from f64 0x10000000000000000)
set(bad_table_f32 table f32)
set(bad_table_f64 table f64)
set(bad_table_none table)
set(bad_table_unknown table e2m2)
set(bad_missing_to convert 1 --to)
set(bad_missing_value convert --to e2m1)
set(bad_empty_list convert --to e2m1,,e4m3 1)
set(bad_flag_value convert --json=yes 1)
set(bad_rbits convert --round rs --rbits 0x100000000 1)
set(bad_rbits_width convert --rbits-width 0 1)
set(bad_sha_format sha256 --format e9m9)
set(bad_sha_policy sha256 --policy all,bogus)
set(bad_sha_round_rs sha256 --round rs)
set(bad_sha_threads sha256 --threads 0)
set(bad_sha_limit sha256 --limit 0x100000001)
set(bad_sha_range sha256 --first 0xffffffff --limit 2)
set(bad_formats_arg formats e2m1)
set(bad_selfcheck_opt selfcheck --seed x)
set(bad_version_arg --version --yaml)
foreach(case unknown_command no_command unknown_format unknown_from unknown_mode unknown_policy
        unknown_option malformed_dots malformed_hex malformed_exp malformed_word code_range
        code_range_dec code_malformed code_overflow table_f32 table_f64 table_none
        table_unknown missing_to missing_value empty_list flag_value rbits rbits_width
        sha_format sha_policy sha_round_rs sha_threads sha_limit sha_range formats_arg
        selfcheck_opt version_arg)
  fp4_cli_test(bad_${case} usage ARGS ${bad_${case}})
endforeach()

# ---------------------------------------------------------------------------
# (e) sha256 (the full 2^32 stream is label "long")
# ---------------------------------------------------------------------------
set(sha_prefix sha256 --json --limit 16777216 --policy satfinite,nosat)
fp4_cli_test(sha256_repeat same FIELD sha256 ARGS ${sha_prefix} ARGS2 ${sha_prefix} TIMEOUT 600)
fp4_cli_test(sha256_threads same FIELD sha256 ARGS ${sha_prefix} --threads 1
             ARGS2 ${sha_prefix} --threads 2 TIMEOUT 600)
# [0.125, 0.5) holds E2M1's 0.25 tie and no special value, where every policy
# agrees: the vectorized satfinite kernel must hash like the scalar paths.
fp4_cli_test(sha256_fast_vs_scalar alleq FIELD sha256
             ARGS sha256 --json --first 0x3e000000 --limit 16777216 --format e2m1
                  --policy satfinite,nosat,cutlass-host --threads 2 TIMEOUT 600)
# The published hashes (docs/cli.md): the code stream must not change unnoticed.
fp4_cli_test(sha256_full json LABELS long TIMEOUT 7200 ARGS sha256 --json
             CHECKS "#=10"
                    0.format=e2m1 0.policy=satfinite 0.sha256=ce1d60d1408cc7f99b9f2c1b0b8794629935442e1c6c51bb84ca6f468471b1bb
                    1.format=e2m1 1.policy=nosat 1.sha256=ce1d60d1408cc7f99b9f2c1b0b8794629935442e1c6c51bb84ca6f468471b1bb
                    2.format=e2m1 2.policy=ml_dtypes 2.sha256=8d76baa6978fb7401d5a9b33e45a14a52f45f84cd3932aa1c1ddefae358f367d
                    3.format=e2m1 3.policy=cutlass-host 3.sha256=52fe17c08a2bd6973e759860aaab936be83012b69e9080ee3511d68714a2cfcd
                    4.format=e2m1 4.policy=modelopt 4.sha256=4e0be06b491e7a03a6a594aeb72b9b047ead5b8b373477f8e04e0ab6826976f1
                    5.format=e4m3 5.policy=satfinite 5.sha256=9d7653f5afbe9034906208b15d2b1e9e21a762aeee82e64f569003902ccfb150
                    6.format=e4m3 6.policy=nosat 6.sha256=f0ca981b8f7d111cd2446d1e844d3f8b34a493306d041ae9a1a29b0436866691
                    7.format=e4m3 7.policy=ml_dtypes 7.sha256=f0ca981b8f7d111cd2446d1e844d3f8b34a493306d041ae9a1a29b0436866691
                    8.format=e4m3 8.policy=cutlass-host 8.sha256=9d7653f5afbe9034906208b15d2b1e9e21a762aeee82e64f569003902ccfb150
                    9.format=e4m3 9.policy=modelopt 9.sha256=f0ca981b8f7d111cd2446d1e844d3f8b34a493306d041ae9a1a29b0436866691)
