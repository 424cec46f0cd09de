//! Microarchitecture names and launch years from x86 family/model/stepping and ARM
//! implementer/part ids. Pure tables.

/// Name and launch year of an x86 microarchitecture from the display family/model (and, where
/// Intel reused a model number, the stepping). `None` for ids not in the table.
///
/// Sources: Linux `arch/x86/include/asm/intel-family.h` for Intel model numbers, AMD's
/// "Processor Programming Reference" documents and Linux `arch/x86/kernel/cpu/amd.c` for the
/// AMD family 17h/19h/1Ah model ranges. Years are the first product launch.
pub fn microarchitecture(
    vendor: &str,
    family: u32,
    model: u32,
    stepping: u32,
) -> Option<(&'static str, u16)> {
    match vendor {
        "GenuineIntel" => intel(family, model, stepping),
        "AuthenticAMD" => amd(family, model),
        // Hygon Dhyana is a licensed Zen 1 core under family 0x18.
        "HygonGenuine" if family == 0x18 => Some(("Zen (Hygon Dhyana)", 2018)),
        _ => None,
    }
}

fn intel(family: u32, model: u32, stepping: u32) -> Option<(&'static str, u16)> {
    if family != 6 {
        return None;
    }
    Some(match model {
        0x1A | 0x1E | 0x1F | 0x2E => ("Nehalem", 2008),
        0x25 | 0x2C | 0x2F => ("Westmere", 2010),
        0x2A => ("Sandy Bridge", 2011),
        0x2D => ("Sandy Bridge-EP", 2012),
        0x3A => ("Ivy Bridge", 2012),
        0x3E => ("Ivy Bridge-EP", 2013),
        0x3C | 0x45 | 0x46 => ("Haswell", 2013),
        0x3F => ("Haswell-EP", 2014),
        0x3D | 0x47 => ("Broadwell", 2014),
        0x56 => ("Broadwell-DE", 2015),
        0x4F => ("Broadwell-EP", 2016),
        0x4E | 0x5E => ("Skylake", 2015),
        // Skylake-SP, Cascade Lake and Cooper Lake share model 0x55; the stepping tells them
        // apart (intel-family.h: "SKYLAKE_X: stepping 0-4, CASCADELAKE_X 5-7, COOPERLAKE_X 10-11").
        0x55 => match stepping {
            0..=4 => ("Skylake-SP", 2017),
            5..=7 => ("Cascade Lake", 2019),
            _ => ("Cooper Lake", 2020),
        },
        0x57 => ("Knights Landing", 2016),
        0x85 => ("Knights Mill", 2017),
        // 0x8E and 0x9E span four "generations" of the Skylake core, again told by stepping.
        0x8E => match stepping {
            0..=9 => ("Kaby Lake", 2016),
            10 => ("Kaby Lake R", 2017),
            11 => ("Whiskey Lake", 2018),
            _ => ("Comet Lake", 2019),
        },
        0x9E => match stepping {
            0..=9 => ("Kaby Lake", 2017),
            _ => ("Coffee Lake", 2017),
        },
        0xA5 | 0xA6 => ("Comet Lake", 2020),
        0x66 => ("Cannon Lake", 2018),
        0x7D | 0x7E => ("Ice Lake", 2019),
        0x6A => ("Ice Lake-SP", 2021),
        0x6C => ("Ice Lake-D", 2021),
        0x8C | 0x8D => ("Tiger Lake", 2020),
        0xA7 => ("Rocket Lake", 2021),
        0x8A => ("Lakefield", 2020),
        0x97 | 0x9A => ("Alder Lake", 2021),
        0xBE => ("Alder Lake-N", 2023),
        0xB7 | 0xBA | 0xBF => ("Raptor Lake", 2022),
        0x8F => ("Sapphire Rapids", 2023),
        0xCF => ("Emerald Rapids", 2023),
        0xAA | 0xAC => ("Meteor Lake", 2023),
        0xB5 | 0xC5 | 0xC6 => ("Arrow Lake", 2024),
        0xBD => ("Lunar Lake", 2024),
        0xCC => ("Panther Lake", 2025),
        0xAD | 0xAE => ("Granite Rapids", 2024),
        0xAF => ("Sierra Forest", 2024),
        0xB6 => ("Grand Ridge", 2024),
        0xDD => ("Clearwater Forest", 2025),
        0x5C => ("Goldmont", 2016),
        0x7A => ("Goldmont Plus", 2017),
        0x86 | 0x96 | 0x9C => ("Tremont", 2020),
        _ => return None,
    })
}

fn amd(family: u32, model: u32) -> Option<(&'static str, u16)> {
    Some(match (family, model) {
        (0x15, 0x00..=0x01) => ("Bulldozer", 2011),
        (0x15, 0x02..=0x1F) => ("Piledriver", 2012),
        (0x15, 0x30..=0x3F) => ("Steamroller", 2014),
        (0x15, 0x60..=0x7F) => ("Excavator", 2015),
        (0x16, _) => ("Jaguar", 2013),
        // Family 17h: Zen (Naples, Summit Ridge, Raven Ridge), Zen+ (Pinnacle Ridge 0x08,
        // Picasso 0x18), Zen 2 from 0x30 (Rome 0x31, Renoir 0x60, Matisse 0x71, Van Gogh 0x90,
        // Mendocino 0xA0).
        (0x17, 0x08) => ("Zen+", 2018),
        (0x17, 0x00..=0x0F) => ("Zen", 2017),
        (0x17, 0x10..=0x17) => ("Zen", 2018),
        (0x17, 0x18..=0x1F) => ("Zen+", 2019),
        (0x17, 0x20..=0x2F) => ("Zen", 2019),
        (0x17, 0x30..=0x3F) => ("Zen 2", 2019),
        (0x17, 0x60..=0x6F) => ("Zen 2", 2020),
        (0x17, 0x70..=0x7F) => ("Zen 2", 2019),
        (0x17, 0x80..=0xAF) => ("Zen 2", 2022),
        // Family 19h: Zen 3 (Milan 0x01, Vermeer 0x21, Cezanne 0x50), Zen 3+ (Rembrandt 0x44),
        // Zen 4 (Genoa 0x11, Storm Peak 0x18, Raphael 0x61, Phoenix 0x74/0x78, Bergamo and
        // Siena 0xA0..).
        (0x19, 0x00..=0x0F) => ("Zen 3", 2021),
        (0x19, 0x20..=0x2F) => ("Zen 3", 2020),
        (0x19, 0x40..=0x4F) => ("Zen 3+", 2022),
        (0x19, 0x50..=0x5F) => ("Zen 3", 2021),
        (0x19, 0x10..=0x1F) => ("Zen 4", 2022),
        (0x19, 0x60..=0x6F) => ("Zen 4", 2022),
        (0x19, 0x70..=0x7F) => ("Zen 4", 2023),
        (0x19, 0xA0..=0xAF) => ("Zen 4c", 2023),
        // Family 1Ah: Zen 5 (Turin 0x02, Turin Dense 0x11, Strix Point 0x24, Granite Ridge 0x44,
        // Krackan 0x60, Strix Halo 0x70).
        (0x1A, 0x00..=0x0F) => ("Zen 5", 2024),
        (0x1A, 0x10..=0x1F) => ("Zen 5c", 2024),
        (0x1A, 0x20..=0x2F) => ("Zen 5", 2024),
        (0x1A, 0x40..=0x4F) => ("Zen 5", 2024),
        (0x1A, 0x60..=0x7F) => ("Zen 5", 2025),
        _ => return None,
    })
}

/// An ARM core design known by (implementer, part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmCore {
    pub name: &'static str,
    pub year: u16,
}

/// Vendor name of an ARM implementer code (MIDR_EL1.Implementer).
pub fn arm_vendor(implementer: u32) -> Option<&'static str> {
    Some(match implementer {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4E => "NVIDIA",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0xC0 => "Ampere",
        _ => return None,
    })
}

/// Core name and launch year from MIDR implementer and part numbers (as Linux's
/// `arch/arm64/include/asm/cputype.h` and util-linux `lscpu-arm.c` list them).
pub fn arm_core(implementer: u32, part: u32) -> Option<ArmCore> {
    let (name, year) = match (implementer, part) {
        (0x41, 0xD03) => ("Cortex-A53", 2012),
        (0x41, 0xD07) => ("Cortex-A57", 2012),
        (0x41, 0xD08) => ("Cortex-A72", 2015),
        (0x41, 0xD0B) => ("Cortex-A76", 2018),
        (0x41, 0xD0C) => ("Neoverse-N1", 2019),
        (0x41, 0xD40) => ("Neoverse-V1", 2020),
        (0x41, 0xD49) => ("Neoverse-N2", 2021),
        (0x41, 0xD4F) => ("Neoverse-V2", 2022),
        (0x41, 0xD84) => ("Neoverse-V3", 2024),
        (0x41, 0xD8E) => ("Neoverse-N3", 2024),
        (0x43, 0x0AF) => ("ThunderX2", 2018),
        (0x46, 0x001) => ("A64FX", 2019),
        (0x48, 0xD01) => ("TaiShan v110", 2019),
        (0xC0, 0xAC3) => ("AmpereOne", 2023),
        _ => return None,
    };
    Some(ArmCore { name, year })
}
