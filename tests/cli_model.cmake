# tests/cli_model.cmake - `fp4sim model info|run|synth`, run through the real
# binary. Included by tests/CMakeLists.txt (registers the tests); the same
# file is also the -P script of the file-checking tests (MODE trace / synth),
# which read safetensors headers with string(JSON).
#
# Expected values come from outside fp4sim:
# - 61 layers and 671026419200 parameters: R1 (docs/reference/deepseek.md §3,
#   also asserted by tests/test_model_config.c).
# - The prompt is input_ids[0:16] and the 48 generated tokens are
#   greedy_f32[16:64] of tests/data/hf-deepseek-v3-tiny/activations.safetensors
#   (transformers 5.17 greedy generation, fixture README.md), read out of that
#   file once with a few lines of Python (struct + json on the header).

set(FP4_MODEL_PROMPT "376,191,308,321,329,370,8,455,170,186,158,84,156,77,320,291")
set(FP4_MODEL_GREEDY
    "51,152,509,32,223,340,153,200,26,421,394,87,353,231,114,43,392,466,488,364,64,115,451,437,54,250,215,369,219,412,312,134,202,184,105,353,378,15,164,214,373,83,135,250,497,293,267,437")

# ---------------------------------------------------------------------------
# Script mode: cmake -DFP4SIM=... -DMODE=trace|synth -DFIXTURE=... -DWORK=... -P
# ---------------------------------------------------------------------------
if(CMAKE_SCRIPT_MODE_FILE)
  function(fail what)
    message(FATAL_ERROR "cli_model ${MODE}: ${what}")
  endfunction()

  function(run)
    execute_process(COMMAND "${FP4SIM}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                    ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      fail("fp4sim ${ARGN}: exit ${rc}: ${err}")
    endif()
    set(out "${out}" PARENT_SCOPE)
  endfunction()

  # The JSON header of a safetensors file (8-byte little-endian length).
  function(st_header path out_var)
    if(NOT EXISTS "${path}")
      fail("${path} was not written")
    endif()
    file(READ "${path}" hex LIMIT 8 HEX)
    set(n 0)
    foreach(i RANGE 7 0 -1)
      math(EXPR pos "${i} * 2")
      string(SUBSTRING "${hex}" ${pos} 2 byte)
      math(EXPR n "${n} * 256 + 0x${byte}")
    endforeach()
    file(READ "${path}" header OFFSET 8 LIMIT ${n})
    set(${out_var} "${header}" PARENT_SCOPE)
  endfunction()

  # Checks "NAME=DTYPE:d0,d1,..." entries of a header.
  function(st_expect header)
    foreach(check IN LISTS ARGN)
      string(REGEX MATCH "^([^=]+)=([^:]+):(.*)$" m "${check}")
      set(name "${CMAKE_MATCH_1}")
      set(want_dtype "${CMAKE_MATCH_2}")
      set(want_shape "${CMAKE_MATCH_3}")
      string(JSON dtype ERROR_VARIABLE e GET "${header}" "${name}" dtype)
      if(e)
        fail("tensor '${name}' missing")
      endif()
      string(JSON nd LENGTH "${header}" "${name}" shape)
      set(dims "")
      if(nd GREATER 0)
        math(EXPR top "${nd} - 1")
        foreach(i RANGE ${top})
          string(JSON d GET "${header}" "${name}" shape ${i})
          list(APPEND dims "${d}")
        endforeach()
      endif()
      string(JOIN "," shape ${dims})
      if(NOT dtype STREQUAL want_dtype OR NOT shape STREQUAL want_shape)
        fail("tensor '${name}': ${dtype} [${shape}], expected ${want_dtype} [${want_shape}]")
      endif()
    endforeach()
  endfunction()

  # Hex of tensor `name`'s bytes in a safetensors file whose header is h.
  function(st_bytes path h name out_var)
    file(READ "${path}" hex LIMIT 8 HEX)
    set(n 0)
    foreach(i RANGE 7 0 -1)
      math(EXPR pos "${i} * 2")
      string(SUBSTRING "${hex}" ${pos} 2 byte)
      math(EXPR n "${n} * 256 + 0x${byte}")
    endforeach()
    string(JSON b0 GET "${h}" "${name}" data_offsets 0)
    string(JSON b1 GET "${h}" "${name}" data_offsets 1)
    math(EXPR off "8 + ${n} + ${b0}")
    math(EXPR len "${b1} - ${b0}")
    file(READ "${path}" bytes OFFSET ${off} LIMIT ${len} HEX)
    set(${out_var} "${bytes}" PARENT_SCOPE)
  endfunction()

  file(REMOVE_RECURSE "${WORK}")
  file(MAKE_DIRECTORY "${WORK}")
  if(MODE STREQUAL "trace")
    run(model run "${FIXTURE}" --prompt-ids ${FP4_MODEL_PROMPT} --generate 2 --precision f32
        --options transformers --trace "${WORK}/trace.safetensors"
        --logits "${WORK}/logits.safetensors" --json)
    string(JSON g0 GET "${out}" generated 0)
    string(JSON g1 GET "${out}" generated 1)
    if(NOT "${g0},${g1}" STREQUAL "51,152")
      fail("generated ${g0},${g1}, expected 51,152 (greedy_f32)")
    endif()
    st_header("${WORK}/trace.safetensors" h)
    # Prefill (16 tokens) under the fixture's names, decode step at pos 16 with '@16'.
    st_expect("${h}" "embed=F32:16,256" "layers.0.input_layernorm=F32:16,256"
              "layers.0.self_attn.q_a_layernorm=F32:16,96"
              "layers.0.self_attn.kv_a_layernorm=F32:16,64"
              "layers.0.self_attn.1=F32:4,16,16" "layers.0.self_attn=F32:16,256"
              "layers.0.post_attention_layernorm=F32:16,256" "layers.0.mlp=F32:16,256"
              "layers.0.out=F32:16,256" "layers.1.mlp.gate=F32:16,16"
              "layers.1.mlp.gate.1=F32:16,4" "layers.1.mlp.gate.2=I64:16,4"
              "layers.1.mlp.routed=F32:16,256" "layers.1.mlp.shared_experts=F32:16,256"
              "layers.3.out=F32:16,256" "final_norm=F32:16,256" "logits=F32:16,512"
              "embed@16=F32:1,256" "layers.2.self_attn.1@16=F32:4,1,17" "logits@16=F32:1,512")
    string(JSON n LENGTH "${h}")
    if(n LESS 80)
      fail("only ${n} trace tensors")
    endif()
    st_header("${WORK}/logits.safetensors" h)
    st_expect("${h}" "logits=F32:17,512" "tokens=I64:18")
  elseif(MODE STREQUAL "synth")
    foreach(d a b)
      run(model synth --config "${FIXTURE}/config.json" --out "${WORK}/${d}" --seed 42)
    endforeach()
    run(model synth --config "${FIXTURE}" --out "${WORK}/c" --seed 42 --dtype bf16)
    file(SHA256 "${WORK}/a/model.safetensors" ha)
    file(SHA256 "${WORK}/b/model.safetensors" hb)
    if(NOT ha STREQUAL hb)
      fail("same seed, different checkpoints")
    endif()
    st_header("${WORK}/a/model.safetensors" h)
    st_expect("${h}" "model.embed_tokens.weight=F32:512,256"
              "model.layers.1.mlp.experts.15.down_proj.weight=F32:256,128"
              "model.layers.3.mlp.gate.e_score_correction_bias=F32:16" "lm_head.weight=F32:512,256")
    st_header("${WORK}/c/model.safetensors" h)
    st_expect("${h}" "model.layers.0.mlp.up_proj.weight=BF16:512,256")
    foreach(d a c)
      foreach(p f64 f32)
        run(model run "${WORK}/${d}" --prompt-ids 1,2,3,4 --generate 8 --precision ${p}
            --options transformers --json)
        string(JSON ng LENGTH "${out}" generated)
        if(NOT ng EQUAL 8)
          fail("${d} ${p}: ${ng} tokens generated")
        endif()
      endforeach()
    endforeach()
  elseif(MODE STREQUAL "synthq")
    # Quantized synth formats (docs/model.md "Quantized checkpoints"): the
    # tensors each writes (names, dtypes, shapes from recipes.md §7.1-7.3 and
    # ds §3 for the fixture's config), the configs beside them, ModelOpt's
    # shared gate/up weight_scale_2 (recipes.md §2.3), and each runs.
    foreach(d f32 f16 fp8 nvfp4-modelopt nvfp4-ct)
      run(model synth --config "${FIXTURE}" --out "${WORK}/${d}" --seed 42 --dtype ${d})
    endforeach()
    st_header("${WORK}/f16/model.safetensors" h)
    st_expect("${h}" "model.layers.0.mlp.up_proj.weight=F16:512,256" "model.norm.weight=F16:256")
    st_header("${WORK}/fp8/model.safetensors" h)
    st_expect("${h}" "model.layers.0.mlp.up_proj.weight=F8_E4M3:512,256"
              "model.layers.0.mlp.up_proj.weight_scale_inv=F32:4,2"
              "model.layers.2.self_attn.kv_a_proj_with_mqa.weight=F8_E4M3:80,256"
              "model.layers.2.self_attn.kv_a_proj_with_mqa.weight_scale_inv=F32:1,2"
              "model.layers.1.mlp.gate.weight=BF16:16,256"
              "model.layers.1.mlp.gate.e_score_correction_bias=F32:16"
              "model.embed_tokens.weight=BF16:512,256" "lm_head.weight=BF16:512,256")
    st_header("${WORK}/nvfp4-modelopt/model.safetensors" h)
    set(e "model.layers.1.mlp.experts.15")
    st_expect("${h}" "model.layers.0.mlp.up_proj.weight=U8:512,128"
              "model.layers.0.mlp.up_proj.weight_scale=F8_E4M3:512,16"
              "model.layers.0.mlp.up_proj.weight_scale_2=F32:"
              "model.layers.0.mlp.up_proj.input_scale=F32:" "${e}.down_proj.weight=U8:256,64"
              "${e}.down_proj.weight_scale=F8_E4M3:256,8"
              "model.layers.3.mlp.shared_experts.gate_proj.weight=U8:128,128"
              "model.layers.0.self_attn.o_proj.weight=BF16:256,128"
              "model.layers.1.mlp.gate.weight=BF16:16,256" "lm_head.weight=BF16:512,256")
    foreach(m "model.layers.0.mlp" "${e}")
      st_bytes("${WORK}/nvfp4-modelopt/model.safetensors" "${h}" "${m}.gate_proj.weight_scale_2" g)
      st_bytes("${WORK}/nvfp4-modelopt/model.safetensors" "${h}" "${m}.up_proj.weight_scale_2" u)
      st_bytes("${WORK}/nvfp4-modelopt/model.safetensors" "${h}" "${m}.down_proj.weight_scale_2" dn)
      if(NOT g STREQUAL u OR g STREQUAL dn)
        fail("${m}: weight_scale_2 gate ${g} up ${u} down ${dn}: gate/up must share one")
      endif()
    endforeach()
    st_header("${WORK}/nvfp4-ct/model.safetensors" h)
    st_expect("${h}" "model.layers.0.self_attn.o_proj.weight_packed=U8:256,64"
              "model.layers.0.self_attn.o_proj.weight_scale=F8_E4M3:256,8"
              "model.layers.0.self_attn.o_proj.weight_global_scale=F32:1"
              "model.layers.0.self_attn.o_proj.input_global_scale=F32:1"
              "${e}.gate_proj.weight_packed=U8:128,128" "model.layers.1.mlp.gate.weight=BF16:16,256"
              "lm_head.weight=BF16:512,256")
    string(JSON t ERROR_VARIABLE absent GET "${h}" "model.layers.0.self_attn.o_proj.weight")
    if(NOT absent)
      fail("nvfp4-ct: a plain o_proj.weight beside weight_packed")
    endif()
    foreach(d f32 fp8 nvfp4-ct)
      if(EXISTS "${WORK}/${d}/hf_quant_config.json")
        fail("${d}: hf_quant_config.json written")
      endif()
    endforeach()
    run(model info "${WORK}/nvfp4-modelopt" --json)
    string(JSON qm GET "${out}" quantization method)
    string(JSON nx LENGTH "${out}" quantization exclude)
    run(model info "${WORK}/nvfp4-ct" --json)
    string(JSON qc GET "${out}" quantization method)
    run(model info "${WORK}/fp8" --json)
    string(JSON qf GET "${out}" quantization method)
    if(NOT "${qm},${nx},${qc},${qf}" STREQUAL "nvfp4-modelopt,7,nvfp4-compressed-tensors,fp8-block")
      fail("info quantization: ${qm},${nx},${qc},${qf}")
    endif()
    foreach(d f16 fp8 nvfp4-modelopt nvfp4-ct)
      foreach(p f64 f32)
        run(model run "${WORK}/${d}" --prompt-ids 1,2,3,4 --generate 4 --precision ${p} --json)
        string(JSON ng LENGTH "${out}" generated)
        if(NOT ng EQUAL 4)
          fail("${d} ${p}: ${ng} tokens generated")
        endif()
      endforeach()
    endforeach()
    # synth writes the values a synthetic model computes with.
    run(model run "${WORK}/f32" --prompt-ids 1,2,3,4 --generate 4 --precision f32 --json)
    string(JSON a GET "${out}" top5 0 logit)
    run(model run "${FIXTURE}" --synthetic 42 --prompt-ids 1,2,3,4 --generate 4 --precision f32
        --json)
    string(JSON b GET "${out}" top5 0 logit)
    if(NOT a STREQUAL b)
      fail("synth f32 checkpoint logit ${a}, --synthetic 42 ${b}")
    endif()
    # NVFP4 needs in % 16 == 0: a message naming the tensor, exit 2.
    file(READ "${FIXTURE}/config.json" cfg)
    string(JSON cfg SET "${cfg}" moe_intermediate_size 40)
    file(WRITE "${WORK}/c40.json" "${cfg}")
    execute_process(COMMAND "${FP4SIM}" model synth --config "${WORK}/c40.json" --out "${WORK}/c40"
                    --dtype nvfp4-ct RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE err)
    if(NOT rc EQUAL 2 OR NOT err MATCHES "experts.0.down_proj.weight': in = 40 is not a multiple of 16")
      fail("moe_intermediate_size 40: exit ${rc}: ${err}")
    endif()
  else()
    fail("unknown MODE")
  endif()
  return()
endif()

# ---------------------------------------------------------------------------
# Registration (include mode)
# ---------------------------------------------------------------------------
if(NOT TARGET fp4sim OR NOT COMMAND fp4_cli_test)
  return()
endif()
set(FP4_MODEL_FIXTURE ${CMAKE_CURRENT_SOURCE_DIR}/data/hf-deepseek-v3-tiny)
set(FP4_MODEL_R1 ${CMAKE_CURRENT_SOURCE_DIR}/data/r1-config.json)

fp4_cli_test(model_help text ARGS model --help REGEX "^usage: fp4sim model info")
fp4_cli_test(model_info_r1 text ARGS model info ${FP4_MODEL_R1}
             REGEX "layers 61 .*\n  main model +671026419200 ")
fp4_cli_test(model_info_r1_json json ARGS model info ${FP4_MODEL_R1} --json
             CHECKS layers=61 total.params=671026419200 "per_layer.#=61" per_layer.0.kind=dense
                    per_layer.3.kind=moe per_layer.3.attention.params=187105280
                    per_layer.0.total.params=583483392 per_layer.3.total.params=11507286272)
fp4_cli_test(model_info_tiny json ARGS model info ${FP4_MODEL_FIXTURE} --json
             CHECKS layers=4 "per_layer.#=4" per_layer.0.kind=dense per_layer.1.kind=moe)
fp4_cli_test(model_run_greedy json
             ARGS model run ${FP4_MODEL_FIXTURE} --prompt-ids ${FP4_MODEL_PROMPT} --generate 48
                  --precision f32 --options transformers --json
             CHECKS generated=${FP4_MODEL_GREEDY} position=62 "top5.#=5" top5.0.id=437)
fp4_cli_test(model_run_text text
             ARGS model run ${FP4_MODEL_FIXTURE} --prompt-ids ${FP4_MODEL_PROMPT} --generate 3
             REGEX "generated \\(3\\): [0-9]+ [0-9]+ [0-9]+\ntop-5 logits at position 17:\n")

# RoPE tables: correctly rounded by default. cos(1) and sin(1) rounded to
# float32 (0x3f0a5140, 0x3f576aa4) are from Python's math.cos/sin (double,
# correctly rounded here) packed with struct; MKL's cos(1) is 0x3f0a5141.
fp4_cli_test(model_rope_cr text ARGS model rope ${FP4_MODEL_FIXTURE} --positions 2
             REGEX "\n0 0 0x00000000 0x3f800000 0x00000000 [^\n]*\n(.*\n)?1 0 0x3f800000 0x3f0a5140 0x3f576aa4 ")
fp4_cli_test(model_run_rope_cr json
             ARGS model run ${FP4_MODEL_FIXTURE} --prompt-ids 1,2,3 --options transformers
                  --rope-trig cr --json
             CHECKS "top5.#=5")
# MKL missing: a message naming FP4SIM_MKL_LIB, exit 1.
add_test(NAME cli_model_rope_nomkl
         COMMAND ${CMAKE_COMMAND} -E env FP4SIM_MKL_LIB=${CMAKE_CURRENT_BINARY_DIR}/no-libmkl.so
                 $<TARGET_FILE:fp4sim> model rope ${FP4_MODEL_FIXTURE} --rope-trig mkl)
set_tests_properties(cli_model_rope_nomkl PROPERTIES LABELS unit WILL_FAIL TRUE)
add_test(NAME cli_model_rope_nomkl_msg
         COMMAND ${CMAKE_COMMAND} -E env FP4SIM_MKL_LIB=${CMAKE_CURRENT_BINARY_DIR}/no-libmkl.so
                 $<TARGET_FILE:fp4sim> model run ${FP4_MODEL_FIXTURE} --prompt-ids 1
                 --options transformers --rope-trig mkl)
set_tests_properties(cli_model_rope_nomkl_msg PROPERTIES LABELS unit
                     PASS_REGULAR_EXPRESSION "^fp4sim: model run: model: RoPE trig 'mkl' needs Intel MKL's libmkl_rt .*FP4SIM_MKL_LIB")

foreach(mode trace synth synthq)
  add_test(NAME cli_model_${mode}
           COMMAND ${CMAKE_COMMAND} -DFP4SIM=$<TARGET_FILE:fp4sim> -DMODE=${mode}
                   -DFIXTURE=${FP4_MODEL_FIXTURE}
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli_model_${mode}
                   -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(cli_model_${mode} PROPERTIES LABELS unit)
endforeach()

# Precision policies (docs/model.md): the run names its policy and engine.
fp4_cli_test(model_run_policy json
             ARGS model run ${FP4_MODEL_FIXTURE} --prompt-ids 1,2,3 --generate 2 --precision f32
                  --policy modelopt-r1 --json
             CHECKS policy=modelopt-r1 engine=ref "generated.#=2")
fp4_cli_test(model_run_policy_emu json
             ARGS model run ${FP4_MODEL_FIXTURE} --prompt-ids 1,2,3 --policy nvfp4-all
                  --engine emu:sm100-mxf4nvf4-cand-a --act-in f32 --out f32 --json
             CHECKS policy=nvfp4-all engine=emu:sm100-mxf4nvf4-cand-a)
fp4_cli_test(model_run_synthetic json
             ARGS model run ${FP4_MODEL_FIXTURE}/config.json --synthetic 5 --prompt-ids 1,2 --json
             CHECKS synthetic_seed=5 policy=reference "top5.#=5")

# Bad arguments: exit 2, one "fp4sim:" line.
set(bad_missing_dir model run ${CMAKE_CURRENT_BINARY_DIR}/no-such-checkpoint --prompt-ids 1)
set(bad_precision model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --precision f16)
set(bad_options model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --options official)
set(bad_policy model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --policy nvfp4)
set(bad_ids model run ${FP4_MODEL_FIXTURE} --prompt-ids 1,x)
set(bad_id_range model run ${FP4_MODEL_FIXTURE} --prompt-ids 512)
set(bad_no_ids model run ${FP4_MODEL_FIXTURE})
set(bad_huge_synth model synth --config ${FP4_MODEL_R1}
    --out ${CMAKE_CURRENT_BINARY_DIR}/cli_model_huge)
set(bad_synth_dtype model synth --config ${FP4_MODEL_R1} --out x --dtype f8)
set(bad_synth_amax model synth --config ${FP4_MODEL_FIXTURE} --out x --dtype nvfp4-ct
    --input-amax -1)
set(bad_info_missing model info ${CMAKE_CURRENT_BINARY_DIR}/no-such-config.json)
set(bad_sub model frobnicate)
set(bad_nosub model)
set(bad_engine model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --policy modelopt-r1 --engine emu:nope)
set(bad_act_in model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --policy modelopt-r1 --act-in f16)
set(bad_act_recipe model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --policy modelopt-r1 --act-recipe mxfp4)
set(bad_synthetic_seed model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --synthetic x)
set(bad_rope_trig model run ${FP4_MODEL_FIXTURE} --prompt-ids 1 --rope-trig libm)
set(bad_rope_positions model rope ${FP4_MODEL_FIXTURE} --positions 0)
foreach(case engine act_in act_recipe synthetic_seed rope_trig rope_positions)
  fp4_cli_test(model_bad_${case} usage ARGS ${bad_${case}})
endforeach()
foreach(case missing_dir precision options policy ids id_range no_ids huge_synth synth_dtype
             synth_amax info_missing sub nosub)
  fp4_cli_test(model_bad_${case} usage ARGS ${bad_${case}})
endforeach()
