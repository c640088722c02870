//! MITRE ATT&CK names for the Elastic rule's `threat` field: the 14 enterprise tactics,
//! and the techniques the seed rules and common Sentinel rules use. A technique not in
//! the table keeps its id with the name "unknown" (and the rule's note says so).

/// Sentinel's tactic spelling (`InitialAccess`) -> (id, name).
pub fn tactic(sentinel: &str) -> Option<(&'static str, &'static str)> {
    let key: String = sentinel
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    TACTICS
        .iter()
        .find(|(_, name, _)| name.replace(' ', "").to_ascii_lowercase() == key)
        .map(|(id, name, _)| (*id, *name))
        .or(match key.as_str() {
            // Sentinel's older name for the pre-compromise tactics.
            "preattack" => Some(("TA0043", "Reconnaissance")),
            _ => None,
        })
}

/// The tactic with this id.
pub fn tactic_by_id(id: &str) -> Option<(&'static str, &'static str)> {
    TACTICS
        .iter()
        .find(|(i, _, _)| *i == id)
        .map(|(i, n, _)| (*i, *n))
}

/// (id, name, short name) of the enterprise tactics.
const TACTICS: &[(&str, &str, &str)] = &[
    ("TA0043", "Reconnaissance", "reconnaissance"),
    ("TA0042", "Resource Development", "resource-development"),
    ("TA0001", "Initial Access", "initial-access"),
    ("TA0002", "Execution", "execution"),
    ("TA0003", "Persistence", "persistence"),
    ("TA0004", "Privilege Escalation", "privilege-escalation"),
    ("TA0005", "Defense Evasion", "defense-evasion"),
    ("TA0006", "Credential Access", "credential-access"),
    ("TA0007", "Discovery", "discovery"),
    ("TA0008", "Lateral Movement", "lateral-movement"),
    ("TA0009", "Collection", "collection"),
    ("TA0011", "Command and Control", "command-and-control"),
    ("TA0010", "Exfiltration", "exfiltration"),
    ("TA0040", "Impact", "impact"),
];

/// A technique or sub-technique: its name and the tactics (ids) it belongs to.
pub fn technique(id: &str) -> Option<(&'static str, &'static [&'static str])> {
    TECHNIQUES
        .iter()
        .find(|(i, _, _)| i.eq_ignore_ascii_case(id))
        .map(|(_, n, t)| (*n, *t))
}

const IA: &str = "TA0001";
const EX: &str = "TA0002";
const PE: &str = "TA0003";
const PR: &str = "TA0004";
const DE: &str = "TA0005";
const CA: &str = "TA0006";
const DI: &str = "TA0007";
const LM: &str = "TA0008";
const CO: &str = "TA0009";
const C2: &str = "TA0011";
const XF: &str = "TA0010";
const IM: &str = "TA0040";
const RE: &str = "TA0043";
const RD: &str = "TA0042";

/// Techniques by id (ATT&CK Enterprise v15 names and tactics).
const TECHNIQUES: &[(&str, &str, &[&str])] = &[
    ("T1078", "Valid Accounts", &[DE, PE, PR, IA]),
    ("T1078.001", "Default Accounts", &[DE, PE, PR, IA]),
    ("T1078.002", "Domain Accounts", &[DE, PE, PR, IA]),
    ("T1078.003", "Local Accounts", &[DE, PE, PR, IA]),
    ("T1078.004", "Cloud Accounts", &[DE, PE, PR, IA]),
    ("T1098", "Account Manipulation", &[PE, PR]),
    ("T1098.001", "Additional Cloud Credentials", &[PE, PR]),
    ("T1098.003", "Additional Cloud Roles", &[PE, PR]),
    ("T1098.005", "Device Registration", &[PE, PR]),
    ("T1552", "Unsecured Credentials", &[CA]),
    ("T1552.001", "Credentials In Files", &[CA]),
    ("T1556", "Modify Authentication Process", &[CA, DE, PE]),
    ("T1556.006", "Multi-Factor Authentication", &[CA, DE, PE]),
    ("T1556.007", "Hybrid Identity", &[CA, DE, PE]),
    ("T1190", "Exploit Public-Facing Application", &[IA]),
    ("T1110", "Brute Force", &[CA]),
    ("T1110.001", "Password Guessing", &[CA]),
    ("T1110.003", "Password Spraying", &[CA]),
    ("T1110.004", "Credential Stuffing", &[CA]),
    ("T1566", "Phishing", &[IA]),
    ("T1566.001", "Spearphishing Attachment", &[IA]),
    ("T1566.002", "Spearphishing Link", &[IA]),
    ("T1059", "Command and Scripting Interpreter", &[EX]),
    ("T1059.001", "PowerShell", &[EX]),
    ("T1003", "OS Credential Dumping", &[CA]),
    ("T1021", "Remote Services", &[LM]),
    ("T1071", "Application Layer Protocol", &[C2]),
    ("T1105", "Ingress Tool Transfer", &[C2]),
    ("T1136", "Create Account", &[PE]),
    ("T1136.003", "Cloud Account", &[PE]),
    ("T1531", "Account Access Removal", &[IM]),
    ("T1486", "Data Encrypted for Impact", &[IM]),
    ("T1485", "Data Destruction", &[IM]),
    ("T1496", "Resource Hijacking", &[IM]),
    ("T1048", "Exfiltration Over Alternative Protocol", &[XF]),
    ("T1041", "Exfiltration Over C2 Channel", &[XF]),
    ("T1567", "Exfiltration Over Web Service", &[XF]),
    ("T1537", "Transfer Data to Cloud Account", &[XF]),
    ("T1114", "Email Collection", &[CO]),
    ("T1530", "Data from Cloud Storage", &[CO]),
    ("T1560", "Archive Collected Data", &[CO]),
    ("T1528", "Steal Application Access Token", &[CA]),
    ("T1539", "Steal Web Session Cookie", &[CA]),
    ("T1558", "Steal or Forge Kerberos Tickets", &[CA]),
    (
        "T1621",
        "Multi-Factor Authentication Request Generation",
        &[CA],
    ),
    ("T1557", "Adversary-in-the-Middle", &[CA, CO]),
    ("T1040", "Network Sniffing", &[CA, DI]),
    ("T1550", "Use Alternate Authentication Material", &[DE, LM]),
    ("T1550.001", "Application Access Token", &[DE, LM]),
    ("T1562", "Impair Defenses", &[DE]),
    ("T1070", "Indicator Removal", &[DE]),
    ("T1027", "Obfuscated Files or Information", &[DE]),
    ("T1036", "Masquerading", &[DE]),
    ("T1112", "Modify Registry", &[DE]),
    ("T1140", "Deobfuscate/Decode Files or Information", &[DE]),
    ("T1218", "System Binary Proxy Execution", &[DE]),
    ("T1484", "Domain or Tenant Policy Modification", &[DE, PR]),
    ("T1055", "Process Injection", &[DE, PR]),
    ("T1068", "Exploitation for Privilege Escalation", &[PR]),
    ("T1047", "Windows Management Instrumentation", &[EX]),
    ("T1053", "Scheduled Task/Job", &[EX, PE, PR]),
    ("T1203", "Exploitation for Client Execution", &[EX]),
    ("T1204", "User Execution", &[EX]),
    ("T1569", "System Services", &[EX]),
    ("T1543", "Create or Modify System Process", &[PE, PR]),
    ("T1547", "Boot or Logon Autostart Execution", &[PE, PR]),
    ("T1133", "External Remote Services", &[PE, IA]),
    ("T1199", "Trusted Relationship", &[IA]),
    ("T1195", "Supply Chain Compromise", &[IA]),
    ("T1087", "Account Discovery", &[DI]),
    ("T1069", "Permission Groups Discovery", &[DI]),
    ("T1018", "Remote System Discovery", &[DI]),
    ("T1046", "Network Service Discovery", &[DI]),
    ("T1082", "System Information Discovery", &[DI]),
    ("T1210", "Exploitation of Remote Services", &[LM]),
    ("T1090", "Proxy", &[C2]),
    ("T1572", "Protocol Tunneling", &[C2]),
    ("T1568", "Dynamic Resolution", &[C2]),
    ("T1589", "Gather Victim Identity Information", &[RE]),
    ("T1595", "Active Scanning", &[RE]),
    ("T1583", "Acquire Infrastructure", &[RD]),
    ("T1585", "Establish Accounts", &[RD]),
    ("T1586", "Compromise Accounts", &[RD]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tactics_and_techniques_resolve() {
        assert_eq!(tactic("InitialAccess"), Some(("TA0001", "Initial Access")));
        assert_eq!(
            tactic("CommandAndControl"),
            Some(("TA0011", "Command and Control"))
        );
        assert_eq!(tactic("Nonsense"), None);
        assert_eq!(technique("T1078.004").map(|t| t.0), Some("Cloud Accounts"));
        assert!(technique("T9999").is_none());
        // Every technique's tactics exist.
        for (_, _, tactics) in TECHNIQUES {
            for t in *tactics {
                assert!(tactic_by_id(t).is_some(), "{t}");
            }
        }
    }
}
